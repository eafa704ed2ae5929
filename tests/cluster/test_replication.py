"""N-way replication between real node processes (N=3, W=2 on five nodes unless a test says
otherwise): every owner holds an acknowledged write at one version, which is the CAS every
node answers; conditional writes race through different nodes and exactly one wins; a replica
that was stopped catches up by hints; a stale replica never brings back a deleted key; a write
whose quorum cannot be met answers SERVER_ERROR in bounded time, never hangs."""
import random
import re
import signal
import threading
import time

import pytest
from cluster.replicas import PeerView, copies, owners
from helpers.cluster import wait_for

REPL = ("--replicas", "3", "--write-quorum", "2", "--read-quorum", "1")


@pytest.fixture(scope="module")
def fleet5(request, tmp_path_factory):
    from cluster.conftest import Fleet
    fleet = Fleet(tmp_path_factory, 41, 5, "--forward-timeout", "1", *REPL)
    request.addfinalizer(fleet.stop)
    return fleet.start()


def cas_of(reply: bytes) -> int:
    m = re.match(rb"VALUE \S+ \d+ \d+ (\d+)\r\n", reply)
    assert m, reply
    return int(m.group(1))


def same_everywhere(held) -> bool:
    return held[0] is not None and len(set(held)) == 1


def test_an_acknowledged_write_is_on_every_owner_at_one_version(fleet5):
    rnd = random.Random(1)
    keys = [b"one:%d" % i for i in range(60)]
    for k in keys:
        node = fleet5[rnd.randrange(5)]
        assert node.call(b"set %s 0 0 3\r\nv%02d\r\n" % (k, keys.index(k))) == b"STORED\r\n"
    for i, k in enumerate(keys):
        own = owners(fleet5, k)
        assert len(own) == 3
        # W=2 acknowledged it; the third owner's copy lands moments later.
        wait_for(lambda k=k, own=own: same_everywhere(copies(fleet5, k, own)), 5,
                 f"{k!r} on all its owners")
        value, version = copies(fleet5, k, own)[0]
        assert value == b"v%02d" % i
        others = [n for n in range(5) if n not in own]
        assert copies(fleet5, k, others) == [None, None]
        # The version every owner stores is the CAS unique gets answers through any node.
        assert {cas_of(fleet5[n].call(b"gets %s\r\n" % k)) for n in range(5)} == {version}


def race(node, request: bytes, start: threading.Barrier, replies: dict, name) -> None:
    with node.conn() as c:
        start.wait()
        replies[name] = c.call(request)


def test_cas_through_two_nodes_exactly_one_wins(fleet5):
    rnd = random.Random(2)
    for round_ in range(25):
        k = b"race:%d" % round_
        a, b = rnd.sample(range(5), 2)
        assert fleet5[a].call(b"set %s 0 0 1\r\n0\r\n" % k) == b"STORED\r\n"
        unique = cas_of(fleet5[b].call(b"gets %s\r\n" % k))
        start = threading.Barrier(2)
        replies = {}

        request = b"cas %s 0 0 1 %d\r\n%%s\r\n" % (k, unique)
        threads = [threading.Thread(target=race, args=(fleet5[n], request % v, start, replies, n))
                   for n, v in ((a, b"A"), (b, b"B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(replies.values()) == [b"EXISTS\r\n", b"STORED\r\n"], replies
        winner = b"A" if replies[a] == b"STORED\r\n" else b"B"
        for n in range(5):
            assert fleet5[n].call(b"get %s\r\n" % k) == b"VALUE %s 0 1\r\n%s\r\nEND\r\n" % (k,
                                                                                     winner)


def test_a_stale_replica_never_brings_back_a_deleted_key(fleet5):
    """One owner still holds a value the others deleted (a replica that missed the delete):
    a read through any node that asks the owners answers the delete, and repairs the stale
    one. The state is planted through peer connections, so no hint can mend it first."""
    k = b"zombie:1"
    assert fleet5[0].call(b"set %s 0 0 5\r\nfirst\r\n" % k) == b"STORED\r\n"
    version = cas_of(fleet5[0].call(b"gets %s\r\n" % k))
    own = owners(fleet5, k)
    stale, fresh = own[2], own[:2]
    for n in fresh:
        with PeerView(fleet5, n) as view:
            assert view.write(b"md %s E%d\r\n" % (k, version + 2)) == b"HD\r\n"
    with PeerView(fleet5, stale) as view:
        assert view.copy(k) == (b"first", version)
    # Through the owners that deleted it and through the nodes that own nothing: gone. (The
    # stale owner's own clients may read its copy until repaired: R=1 answers locally.)
    for n in [*fresh, *(i for i in range(5) if i not in own)]:
        assert fleet5[n].call(b"get %s\r\n" % k) == b"END\r\n", n
    wait_for(lambda: copies(fleet5, k, [stale]) == [None], 5, "the stale owner repaired")
    assert fleet5[stale].call(b"get %s\r\n" % k) == b"END\r\n"
    assert fleet5[0].stats("cluster")["read_repairs"] + sum(
        fleet5[n].stats("cluster")["read_repairs"] for n in range(1, 5)) > 0


def test_an_answered_write_never_goes_again_above_a_newer_copy(fleet5):
    """A write already answered STORED (two owners hold it) reaches its third owner after a
    newer copy did, as a later write of the client's through another node would: the third
    owner answers that it holds a newer version, and the write must stay superseded there.
    Going again above it would bring the older value back over the newer one on every
    owner (a history test once caught exactly that: an acknowledged write lost)."""
    k = b"late:1"
    first, second, third = owners(fleet5, k)
    newer = None
    with PeerView(fleet5, third) as view:
        fleet5[third].proc.send_signal(signal.SIGSTOP)
        try:
            # Queued at the stopped owner first (before anything on its links): a copy
            # versioned 5 s ahead of the clocks (milliseconds since 2020 above 22 bits), so
            # that it is newer than the write below.
            newer = (int(time.time() * 1000) - 1577836800000 + 5000) << 22
            view.conn.send(b"ms %s 5 T0 F0 E%d\r\nnewer\r\n" % (k, newer))
            # Then the write, answered by the first two owners alone.
            assert fleet5[first].call(b"set %s 0 0 5\r\nolder\r\n" % k) == b"STORED\r\n"
        finally:
            fleet5[third].proc.send_signal(signal.SIGCONT)
        assert view.conn.read_until(b"\r\n") == b"HD\r\n"
    # The first owner hears EX from the third: nothing goes again, the newer copy stays.
    wait_for(lambda: copies(fleet5, k, [third]) == [(b"newer", newer)], 5, "the newer copy")
    time.sleep(1.0)     # what going again would take, many times over
    assert copies(fleet5, k, [third]) == [(b"newer", newer)]
    older = copies(fleet5, k, [first, second])
    assert all(c is not None and c[0] in (b"older", b"newer") and c[1] <= newer
               for c in older), older


def test_a_stopped_replica_catches_up_by_hints(make_fleet):
    fleet = make_fleet(46, 5, "--forward-timeout", "0.5", *REPL)
    fleet.start()
    stopped = 4
    keys = [k for k in (b"hint:%d" % i for i in range(200))
            if stopped in owners(fleet, k)][:40]
    coordinators = [0, 1, 2, 3]
    for k in keys:
        assert fleet[0].call(b"set %s 0 0 2\r\nv1\r\n" % k) == b"STORED\r\n"
    fleet[stopped].proc.send_signal(signal.SIGSTOP)
    try:
        # The two live owners make the quorum; the stopped one's writes become hints.
        for i, k in enumerate(keys):
            node = fleet[coordinators[i % 4]]
            if i % 2:
                assert node.call(b"delete %s\r\n" % k) == b"DELETED\r\n"
            else:
                assert node.call(b"set %s 0 0 2\r\nv2\r\n" % k) == b"STORED\r\n"
        # Each becomes a hint when its request to the stopped owner times out.
        wait_for(lambda: sum(fleet[n].stats("cluster")["hints_queued"]
                             for n in coordinators) >= len(keys), 10, "the missed writes hinted")
    finally:
        fleet[stopped].proc.send_signal(signal.SIGCONT)

    def caught_up():
        pending = sum(fleet[n].stats("cluster")["hints_pending_members"]
                      for n in coordinators)
        with PeerView(fleet, stopped) as view:
            held = [view.copy(k) for k in keys]
        return pending == 0 and all(
            (h is None) if i % 2 else (h is not None and h[0] == b"v2")
            for i, h in enumerate(held))
    wait_for(caught_up, 30, "the stopped replica caught up")
    assert sum(fleet[n].stats("cluster")["hints_replayed"] for n in coordinators) >= len(keys)
    # Through every node, the stopped one included: the newest write, deletes deleted; and
    # so after that replica restarts from nothing (kill -9), its reads merge the others'.
    for restarted in (False, True):
        if restarted:
            fleet[stopped].kill()
            fleet[stopped].start()
            fleet.wait_converged()
        for n in range(5):
            for i, k in enumerate(keys):
                want = b"END\r\n" if i % 2 else b"VALUE %s 0 2\r\nv2\r\nEND\r\n" % k
                assert fleet[n].call(b"get %s\r\n" % k) == want, (n, k, restarted)


def test_a_quorum_that_cannot_be_met_answers_server_error_and_recovers(make_fleet):
    """N=3, W=3 on three nodes: with one stopped, no write can be acknowledged; the client
    hears why, in bounded time; once it is back, writes succeed again."""
    fleet = make_fleet(56, 3, "--forward-timeout", "0.5", "--replicas", "3",
                       "--write-quorum", "3")
    fleet.start()
    fleet[2].proc.send_signal(signal.SIGSTOP)
    try:
        with fleet[0].conn(timeout=10) as c:
            reply = c.call(b"set q:1 0 0 1\r\nx\r\n")
            assert re.fullmatch(rb"SERVER_ERROR quorum not met: \d of 3 owners [^\r]*\r\n",
                                reply), reply
            # The node keeps serving: reads are answered by the owners it can reach.
            assert c.call(b"get q:never\r\n") == b"END\r\n"
        assert fleet[0].stats("cluster")["quorum_failures"] >= 1
    finally:
        fleet[2].proc.send_signal(signal.SIGCONT)
    fleet.wait_converged()
    wait_for(lambda: fleet[0].call(b"set q:2 0 0 1\r\ny\r\n") == b"STORED\r\n", 30,
             "writes acknowledged again")
    for n in range(3):
        assert fleet[n].call(b"get q:2\r\n") == b"VALUE q:2 0 1\r\ny\r\nEND\r\n"
