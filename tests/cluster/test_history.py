"""Histories under faults: concurrent clients write through random nodes and record what they
were told; after kill -9 and SIGSTOP/SIGCONT of owners mid-run, every acknowledged write (or
a later one of the same client) is readable through every survivor, and nothing is read that
no client wrote. The negative control runs the same history with one owner per key and must
be caught losing acknowledged writes, so a checker that cannot see a loss fails too."""
import signal
import time

import pytest
from cluster.history import History, Readers, Writers, quiesce, reader
from helpers.cluster import NodeProcess

# Long choreographies: the sanitizer run leaves them out (pyproject.toml, markers).
pytestmark = pytest.mark.choreography

KEYS_PER_WRITER = 40


def run(fleet, nodes, faults) -> History:
    writers = Writers(fleet, lambda: nodes, keys=KEYS_PER_WRITER).start()
    try:
        for delay, action in faults:
            time.sleep(delay)
            action()
        time.sleep(0.5)
    finally:
        history = writers.finish()
    return history


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



def one_history(make_fleet, *flags, lossless: bool = True):
    """Set and cas writers and readers through random live nodes of a 5-node fleet, while
    one fault after another hits it: a join, a graceful leave, kill -9 with a restart before
    detection, kill -9 with a restart after it, SIGSTOP, the leaver's rejoin. Each fault's
    keys retire after it; the fleet settles (hand-over done, hints replayed, and when
    `lossless` every owner holding what was acknowledged) between faults. Returns the fleet,
    both writers' histories and the nodes up at the end."""
    fleet = make_fleet(170, 5, "--forward-timeout", "0.5", "--anti-entropy-interval", "2",
                       *flags)
    fleet.start()
    up = [0, 1, 2, 3, 4]

    def via():
        return list(up)
    sets = Writers(fleet, via, n=2, op="set", prefix="hs").start()
    cases = Writers(fleet, via, n=2, op="cas", prefix="hc").start()
    readers = Readers(fleet, via, [sets, cases])
    joiner = NodeProcess("c175", "127.0.0.175", fleet.key_file,
                         extra=("--forward-timeout", "0.5", "--anti-entropy-interval", "2",
                                *flags))
    fleet.nodes.append(joiner)

    def down(i):
        up.remove(i)

    def back(i, join=True):
        fleet[i].start(join=[fleet[0].addr] if join else None)
        up.append(i)

    def leave(i):
        down(i)
        fleet[i].terminate()

    def kill(i):
        down(i)
        fleet[i].kill()

    def stop(i):
        down(i)
        fleet[i].proc.send_signal(signal.SIGSTOP)

    def cont(i):
        fleet[i].proc.send_signal(signal.SIGCONT)
        up.append(i)

    faults = [
        ("join", [lambda: back(5)]),
        ("graceful leave", [lambda: leave(1)]),
        ("kill -9, back before detection", [lambda: kill(2), lambda: back(2, join=False)]),
        ("kill -9, back after detection", [
            lambda: kill(3), lambda: fleet.wait_converged([fleet[i] for i in up]),
            lambda: back(3, join=False)]),
        ("SIGSTOP 1.5 s", [lambda: stop(4), lambda: time.sleep(1.5), lambda: cont(4)]),
        ("the leaver rejoins", [lambda: back(1)]),
    ]
    phases = []
    try:
        for name, steps in faults:
            time.sleep(0.7)
            phases.append((name, time.monotonic()))
            for step in steps:
                step()
            time.sleep(0.7)
            retired = {**sets.history.acked, **cases.history.acked}
            sets.next_group()
            cases.next_group()
            quiesce(fleet, sorted(up), retired if lossless else None, hints=False)
    finally:
        readers.finish()
        histories = sets.finish(), cases.finish()
    return fleet, histories[0], histories[1], sorted(up), phases


def test_one_history_through_joins_leaves_kills_and_pauses(make_fleet):
    fleet, sets, cases, up, phases = one_history(make_fleet, "--replicas", "3",
                                                 "--write-quorum", "2", "--read-quorum", "2")
    assert len(sets.acked) > 100 and len(cases.acked) > 50
    quiesce(fleet, up, {**sets.acked, **cases.acked})
    for i in up:
        for h in (sets, cases):
            assert h.violations(reader(fleet[i])) == [], fleet[i].name
    assert sets.read_violations(phases) + cases.read_violations(phases) == []
    assert len(sets.reads) + len(cases.reads) > 100
    assert [w for w in cases.wrong if "NOT_FOUND" in w] == []


def test_negative_control_the_same_history_with_one_owner_per_key_loses_writes(make_fleet):
    fleet, sets, cases, up, _ = one_history(make_fleet, "--replicas", "1", "--write-quorum",
                                            "1", lossless=False)
    quiesce(fleet, up)
    lost = sets.violations(reader(fleet[up[0]])) + cases.violations(reader(fleet[up[0]]))
    assert lost, "the checker saw no loss though kill -9 took the only copy of some keys"
