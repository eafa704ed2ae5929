"""Histories under faults: concurrent clients write through random nodes and record what they
were told; after kill -9 and SIGSTOP/SIGCONT of owners mid-run, every acknowledged write (or
a later one of the same client) is readable through every survivor, and nothing is read that
no client wrote. The negative control runs the same history with one owner per key and must
be caught losing acknowledged writes, so a checker that cannot see a loss fails too."""
import random
import re
import signal
import threading
import time

import pytest
from cluster.replicas import PeerView, owners
from helpers.cluster import wait_for

KEYS_PER_WRITER = 40


class History:
    """Per key (one writer each, so its writes are ordered): the newest sequence number a
    client was told STORED, and the newest it sent at all (acknowledged or not)."""

    def __init__(self):
        self.acked: dict[bytes, int] = {}
        self.sent: dict[bytes, int] = {}

    def violations(self, read) -> list[str]:
        """read(key) -> the sequence number a node answers, or None on a miss."""
        out = []
        for key, sent in self.sent.items():
            got = read(key)
            acked = self.acked.get(key)
            if acked is not None and (got is None or got < acked):
                out.append(f"{key!r}: acknowledged {acked}, read {got}")
            if got is not None and got > sent:
                out.append(f"{key!r}: read {got}, never written (last sent {sent})")
        return out


def writer(fleet, nodes, wid: int, history: History, stop: threading.Event) -> None:
    rnd = random.Random(wid)
    keys = [b"h%d:%d" % (wid, i) for i in range(KEYS_PER_WRITER)]
    seq, conn = 0, None
    while not stop.is_set():
        key = rnd.choice(keys)
        seq += 1
        history.sent[key] = seq
        try:
            if conn is None:
                conn = fleet[rnd.choice(nodes)].conn(timeout=5)
            value = b"%d" % seq
            reply = conn.call(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
        except (OSError, AssertionError):
            conn = None         # a node gone or stalled: the write is unknown, not acked
            continue
        if reply == b"STORED\r\n":
            history.acked[key] = seq
        if rnd.random() < 0.05:
            conn.close()        # spread the load over the coordinators
            conn = None


def run(fleet, nodes, faults) -> History:
    history, stop = History(), threading.Event()
    threads = [threading.Thread(target=writer, args=(fleet, nodes, w, history, stop))
               for w in range(4)]
    for t in threads:
        t.start()
    try:
        for delay, action in faults:
            time.sleep(delay)
            action()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    return history


def reader(node):
    def read(key: bytes) -> int | None:
        reply = node.call(b"get %s\r\n" % key)
        m = re.match(rb"VALUE \S+ 0 \d+\r\n(\d+)\r\nEND\r\n", reply)
        assert m or reply == b"END\r\n", reply
        return int(m.group(1)) if m else None
    return read


def quiesce(fleet, survivors, acked: dict[bytes, int] | None = None) -> None:
    """One ring on the survivors, hints to members replayed, hand-over done: with `acked`,
    until every owner holds each key's newest acknowledged write."""
    fleet.wait_converged([fleet[i] for i in survivors])
    wait_for(lambda: sum(fleet[i].stats("cluster")["hints_pending_members"]
                         for i in survivors) == 0, 30, "hints to the members replayed")
    if acked is not None:
        wait_for(lambda: all(fleet[i].stats("cluster")["handover_running"] == 0
                             for i in survivors) and all_owners_hold(fleet, survivors, acked),
                 60, "hand-over and repair", interval=0.5,
                 detail=lambda: stale_copies(fleet, survivors, acked))


def stale_copies(fleet, survivors, acked: dict[bytes, int]) -> str:
    """Which owners lack which acknowledged write, and what each node's repair did."""
    views = {i: PeerView(fleet, i) for i in survivors}
    try:
        bad = [f"{k!r}@{fleet[i].name}: {views[i].copy(k)} < {seq}"
               for k, seq in acked.items() for i in owners(fleet, k, via=survivors[0])
               if (c := views[i].copy(k)) is None or int(c[0]) < seq]
    finally:
        for view in views.values():
            view.close()
    counters = {fleet[i].name: {k: v for k, v in fleet[i].stats("cluster").items()
                                if k.startswith(("handover_", "anti_entropy_", "hints_"))}
                for i in survivors}
    return f"{len(bad)} stale: {bad[:10]}\n{counters}"


def all_owners_hold(fleet, survivors, acked: dict[bytes, int]) -> bool:
    """Every owner's own copy of every key is its newest acknowledged write or later."""
    views = {i: PeerView(fleet, i) for i in survivors}

    def fresh(copy, seq):
        return copy is not None and int(copy[0]) >= seq
    try:
        return all(fresh(views[i].copy(k), seq) for k, seq in acked.items()
                   for i in owners(fleet, k, via=survivors[0]))
    finally:
        for v in views.values():
            v.close()


@pytest.mark.parametrize("read_quorum", [1, 2])
def test_acknowledged_writes_survive_owners_killed_and_stopped(make_fleet, read_quorum):
    fleet = make_fleet(61 if read_quorum == 1 else 51, 5, "--forward-timeout", "0.5",
                       "--replicas", "3", "--write-quorum", "2",
                       "--read-quorum", str(read_quorum), "--anti-entropy-interval", "2")
    fleet.start()
    stopped = fleet[4]
    history = run(fleet, [0, 1, 2], [
        (1.0, fleet[3].kill),
        (0.5, lambda: stopped.proc.send_signal(signal.SIGSTOP)),
        (1.5, lambda: stopped.proc.send_signal(signal.SIGCONT)),
    ])
    assert len(history.acked) > KEYS_PER_WRITER
    # After quiescence (hints replayed, hand-over done) every owner holds every key's newest
    # acknowledged write: R=1 reads it from any owner, and one more owner may die.
    survivors = [0, 1, 2, 4]
    quiesce(fleet, survivors, history.acked)
    for i in survivors:
        assert history.violations(reader(fleet[i])) == [], fleet[i].name
    fleet[0].kill()
    survivors = [1, 2, 4]
    quiesce(fleet, survivors, history.acked)
    for i in survivors:
        assert history.violations(reader(fleet[i])) == [], fleet[i].name


def test_negative_control_one_owner_per_key_loses_acknowledged_writes(make_fleet):
    fleet = make_fleet(66, 3, "--forward-timeout", "0.5", "--replicas", "1",
                       "--write-quorum", "1")
    fleet.start()
    history = run(fleet, [0, 1], [(1.0, fleet[2].kill)])
    survivors = [0, 1]
    quiesce(fleet, survivors)
    lost = history.violations(reader(fleet[0]))
    assert lost, "the checker saw no loss though the only owner of a third of the keys died"
    assert all("acknowledged" in v for v in lost)


def test_the_checker_catches_a_value_nobody_wrote():
    history = History()
    history.sent[b"k"] = 3
    history.acked[b"k"] = 2
    assert history.violations(lambda k: 2) == []
    assert history.violations(lambda k: 3) == []
    assert history.violations(lambda k: 1) != []
    assert history.violations(lambda k: None) != []
    assert history.violations(lambda k: 4) != []

