"""Data follows the ring, between real node processes: a node joins while clients read through
every node and reads stay warm; afterwards every key is on exactly its owners (the joined node
holds its share, nothing else moved); a node killed with N=2 has its keys brought back to two
copies by the survivors; a node leaving by SIGTERM with N=1 hands over everything it held."""
import random
import signal
import threading

from helpers.cluster import NodeProcess, wait_for

from pycache_cluster.cluster.ring import Ring

KEYS = [b"ho:%d" % i for i in range(20000)]


def load(node, keys) -> None:
    with node.conn(timeout=30) as c:
        for i in range(0, len(keys), 1000):
            c.call(b"".join(b"set %s 0 0 4 noreply\r\nv%03d\r\n" % (k, j % 1000)
                            for j, k in enumerate(keys[i:i + 1000], i)))


def items(node) -> int:
    return int(node.stats("")["curr_items"]) if node.server.alive() else 0


def idle(fleet, nodes) -> bool:
    return all(fleet[i].stats("cluster")["handover_running"] == 0 for i in nodes)


def expected_items(fleet, nodes, keys, n) -> dict[int, int]:
    """How many of `keys` each node owns on the ring of `nodes` (the reference ring)."""
    ring = Ring(2000, {fleet[i].name: 1 for i in nodes})
    index = {fleet[i].name: i for i in nodes}
    count = dict.fromkeys(nodes, 0)
    for k in keys:
        for owner in ring.owners(k, n):
            count[index[owner]] += 1
    return count


def on_exactly_their_owners(fleet, nodes, keys, n) -> bool:
    want = expected_items(fleet, nodes, keys, n)
    return all(items(fleet[i]) == want[i] for i in nodes)


class Readers:
    """Clients reading random keys through every node, counting hits."""

    def __init__(self, fleet, nodes, keys):
        self.hits = self.reads = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(fleet[i], keys, i))
                        for i in nodes]
        for t in self.threads:
            t.start()

    def _read(self, node, keys, seed):
        rnd = random.Random(seed)
        with node.conn(timeout=10) as c:
            while not self.stop.is_set():
                batch = rnd.sample(keys, 20)
                reply = c.call(b"".join(b"get %s\r\n" % k for k in batch))
                self.hits += reply.count(b"VALUE ")
                self.reads += len(batch)

    def finish(self) -> float:
        self.stop.set()
        for t in self.threads:
            t.join(15)
        return self.hits / self.reads


def test_a_join_keeps_reads_warm_and_moves_only_the_new_share_then_a_kill_heals(make_fleet):
    fleet = make_fleet(31, 3, "--replicas", "2", "--write-quorum", "2")
    fleet.start()
    load(fleet[0], KEYS)
    wait_for(lambda: on_exactly_their_owners(fleet, [0, 1, 2], KEYS, 2), 30, "loaded")
    joiner = NodeProcess("c34", "127.0.0.34", fleet.key_file,
                         extra=("--replicas", "2", "--write-quorum", "2"))
    fleet.nodes.append(joiner)
    readers = Readers(fleet, [0, 1, 2], KEYS)
    try:
        joiner.start(join=[fleet[0].addr])
        fleet.wait_converged()
        wait_for(lambda: idle(fleet, range(4)) and
                 on_exactly_their_owners(fleet, range(4), KEYS, 2), 60, "the hand-over",
                 detail=lambda: str((expected_items(fleet, range(4), KEYS, 2),
                                     [items(fleet[i]) for i in range(4)])))
    finally:
        ratio = readers.finish()
    assert ratio >= 0.999, ratio
    # The joined node holds exactly what the ring gives it: about a quarter of 2 copies.
    assert 0.8 * len(KEYS) / 2 < items(joiner) < 1.2 * len(KEYS) / 2
    # What moved is what the joiner now owns (each from its two former holders, plus the
    # few a settling walk sends away again); keys that stay put were not sent.
    sent = sum(fleet[i].stats("cluster")["handover_keys_sent"] for i in range(3))
    assert items(joiner) <= sent <= 2.2 * items(joiner)
    # A kill: the survivors bring every key back to two copies.
    fleet[1].kill()
    survivors = [0, 2, 3]
    fleet.wait_converged([fleet[i] for i in survivors])
    wait_for(lambda: idle(fleet, survivors) and
             on_exactly_their_owners(fleet, survivors, KEYS, 2), 60, "two copies again")
    for i in survivors:
        sample = random.Random(i).sample(KEYS, 200)
        with fleet[i].conn() as c:
            reply = c.call(b"".join(b"get %s\r\n" % k for k in sample))
        assert reply.count(b"VALUE ") == 200


def test_a_graceful_leave_with_one_owner_per_key_loses_nothing(make_fleet):
    fleet = make_fleet(36, 3, "--replicas", "1", "--write-quorum", "1")
    fleet.start()
    keys = KEYS[:5000]
    load(fleet[0], keys)
    wait_for(lambda: on_exactly_their_owners(fleet, [0, 1, 2], keys, 1), 30, "loaded")
    leaving = fleet[2]
    assert items(leaving) > 0
    leaving.proc.send_signal(signal.SIGTERM)
    assert leaving.proc.wait(60) == 0
    fleet.wait_converged([fleet[0], fleet[1]])
    assert on_exactly_their_owners(fleet, [0, 1], keys, 1)
    for i in (0, 1):
        with fleet[i].conn() as c:
            reply = c.call(b"".join(b"get %s\r\n" % k for k in keys))
        assert reply.count(b"VALUE ") == len(keys)
