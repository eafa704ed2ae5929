"""Graceful leaves and joins lose no acknowledged write and answer what memcached would, round
after round (each round hits the window in which other nodes' rings still name the leaver,
or the former first owner, as the key's first owner):
- cas through the other nodes on keys the leaver owns first (N=3 W=2 R=2), across its leave
  and its rejoin; no acknowledged cas lost, no NOT_FOUND for a key that is there;
- N=1 (and N=2) sets through the leaver itself: none lost;
- reads and writes through the leaver until it closes its clients: no false miss, no
  quorum error.
Key groups retire after each fault (cluster/history.py)."""
import random
import threading
import time

import pytest
from cluster.history import Writers, quiesce, reader
from helpers.cluster import wait_for

from pycache_cluster.cluster.ring import Ring

# Long choreographies: the sanitizer run leaves them out (pyproject.toml, markers).
pytestmark = pytest.mark.choreography

ROUNDS = 4


def first_owned(fleet, node: int, n: int, count: int, prefix: str) -> list[bytes]:
    """`count` keys whose first owner on the whole fleet's ring is fleet[node]."""
    ring = Ring(2000, {p.name: 1 for p in fleet.nodes})
    out, i = [], 0
    while len(out) < count:
        key = b"%s%d" % (prefix.encode(), i)
        if ring.owners(key, n)[0] == fleet[node].name:
            out.append(key)
        i += 1
    return out


def leave(node) -> None:
    """SIGTERM, and the leave ran to its end (exit status 0)."""
    assert node.terminate() == 0, node.log_tail()


def test_cas_through_the_others_while_the_first_owner_leaves_and_rejoins(make_fleet):
    fleet = make_fleet(150, 5, "--replicas", "3", "--write-quorum", "2", "--read-quorum", "2")
    fleet.start()
    leaver = fleet[4]
    # Each writer's keys of group g: ones the leaver owns first (a group per fault).
    pool = first_owned(fleet, 4, 3, 4 * 10 * 2 * ROUNDS, "lc")
    writers = Writers(fleet, lambda: [0, 1, 2, 3], op="cas",
                      keys_for=lambda g, w: pool[(g * 4 + w) * 10:(g * 4 + w + 1) * 10])
    writers.start()
    try:
        for _ in range(ROUNDS):
            time.sleep(0.6)
            leave(leaver)
            time.sleep(0.4)
            writers.next_group()        # the leave's keys are done; the rejoin's begin
            leaver.start()
            fleet.wait_converged()
            time.sleep(0.4)
            writers.next_group()
    finally:
        history = writers.finish()
    assert len(history.acked) > 100
    quiesce(fleet, range(5), history.acked)
    for i in range(5):
        assert history.violations(reader(fleet[i])) == [], fleet[i].name
    assert history.wrong == []


@pytest.mark.parametrize("replicas", [1, 2])
def test_sets_through_the_leaver_survive_its_leave(make_fleet, replicas):
    fleet = make_fleet(155, 3, "--replicas", str(replicas), "--write-quorum", str(replicas))
    fleet.start()
    leaver = fleet[2]
    writers = Writers(fleet, lambda: [2] if leaver.server.alive() else [0, 1], n=8,
                      prefix="ls")
    writers.start()
    try:
        for _ in range(ROUNDS):
            time.sleep(0.5)
            leave(leaver)
            writers.next_group()
            leaver.start()
            fleet.wait_converged()
    finally:
        history = writers.finish()
    assert len(history.acked) > 100
    quiesce(fleet, range(3), history.acked)
    for i in range(3):
        assert history.violations(reader(fleet[i])) == [], fleet[i].name


def through(leaver, keys, seed, stop, bad) -> None:
    """A client of the leaver: a get of a key that is there and a set, until it is closed;
    any other answer goes to `bad`."""
    rnd = random.Random(seed)
    try:
        with leaver.conn(timeout=10) as c:
            while not stop.is_set():
                key = rnd.choice(keys)
                got = c.call(b"get %s\r\nset lw%d 0 0 1\r\nw\r\n" % (key, seed))
                if got != b"VALUE %s 0 1\r\nv\r\nEND\r\nSTORED\r\n" % key:
                    bad.append(got)
    except (OSError, AssertionError):
        pass            # the leaver closed the connection: the client is done


def test_reads_and_writes_through_the_leaver_until_it_closes_its_clients(make_fleet):
    fleet = make_fleet(158, 4, "--replicas", "3", "--write-quorum", "2", "--read-quorum", "2")
    fleet.start()
    leaver = fleet[3]
    keys = [b"lr%d" % i for i in range(300)]
    with fleet[0].conn() as c:
        assert c.call(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys)) == \
            b"STORED\r\n" * len(keys)
    for _ in range(2):
        bad, stop = [], threading.Event()
        threads = [threading.Thread(target=through, args=(leaver, keys, s, stop, bad))
                   for s in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        leave(leaver)
        stop.set()
        for t in threads:
            t.join(15)
        assert bad == []
        leaver.start()
        wait_for(lambda: fleet[0].stats("cluster")["ring_nodes"] == 4, 30, "the rejoin")
        fleet.wait_converged()
