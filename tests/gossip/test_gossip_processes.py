"""Five real `pycache-cluster serve` nodes, each on its own 127.0.0.x, asked `cluster members`
over TCP: the whole membership lifecycle over the network."""

import os

from pycache_cluster.gossip.state import State

HOSTS = [f"127.0.0.{61 + i}" for i in range(5)]
NAMES = [f"g{i}" for i in range(5)]


def test_five_nodes_kill_restart_leave_and_an_intruder(nodes, key_file, wait):
    keys = key_file("cluster.key", os.urandom(32))
    procs = {n: nodes(n, h, key_file=keys) for n, h in zip(NAMES, HOSTS)}
    intruder = nodes("intruder", "127.0.0.66", key_file=key_file("other.key", os.urandom(32)))
    seeds = [procs["g0"].addr, procs["g1"].addr]
    for p in [*procs.values(), intruder]:
        p.start(join=seeds)

    def views(names):
        return {n: procs[n].members() for n in names}

    def states(names, subject):
        return {n: v.get(subject, (None, None, None, None))[2] for n, v in views(names).items()}

    def detail():
        return "\n".join(f"{n}: {v}" for n, v in views(procs).items()) + "\n" + \
            procs["g0"].log_tail()

    wait(lambda: all(set(v) == set(NAMES) and all(e[2] == State.ALIVE for e in v.values())
                     for v in views(NAMES).values()), 20, "all five see each other alive",
         detail=detail)
    # Every member is listed at the gossip address it was started with.
    assert {n: (e[0], e[1]) for n, e in procs["g2"].members().items()} == \
        {n: (p.host, p.gossip_port) for n, p in procs.items()}

    # kill -9: every survivor declares it dead.
    survivors = NAMES[:4]
    old_inc = procs["g4"].members()["g4"][3]
    procs["g4"].kill()
    wait(lambda: set(states(survivors, "g4").values()) == {State.DEAD}, 20,
         "g4 declared dead everywhere", detail=detail)
    # No false positives among the survivors (a busy machine may briefly suspect one).
    assert all(set(states(survivors, n).values()) <= {State.ALIVE, State.SUSPECT}
               for n in survivors)

    # Restarted under the same name and address: it out-bids its dead record.
    procs["g4"].start()

    def g4_back():
        seen = [v.get("g4") for v in views(NAMES).values()]
        return (all(e and e[2] == State.ALIVE for e in seen)
                and len({e[3] for e in seen}) == 1 and seen[0][3] > old_inc)

    wait(g4_back, 20, "restarted g4 alive everywhere with a higher incarnation", detail=detail)

    # SIGTERM: a graceful leave, seen as left rather than dead; the node still exits 0.
    assert procs["g3"].terminate() == 0
    rest = ["g0", "g1", "g2", "g4"]
    wait(lambda: set(states(rest, "g3").values()) == {State.LEFT}, 10, "g3 seen as left",
         detail=detail)

    # The node with the wrong key was never admitted, and never admitted anyone; the seeds
    # dropped its packets as unauthenticated.
    assert all("intruder" not in v for v in views(rest).values())
    assert set(intruder.members()) == {"intruder"}
    assert intruder.proc.poll() is None
    assert procs["g0"].stats()["dropped_auth"] + procs["g1"].stats()["dropped_auth"] > 0
