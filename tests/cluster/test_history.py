"""Histories under faults: concurrent clients write through random nodes and record what they
were told; after kill -9 and SIGSTOP/SIGCONT of owners mid-run, every acknowledged write (or
a later one of the same client) is readable through every survivor, and nothing is read that
no client wrote. The negative control runs the same history with one owner per key and must
be caught losing acknowledged writes, so a checker that cannot see a loss fails too."""
import signal
import time

import pytest
from cluster.history import History, Writers, quiesce, reader

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

