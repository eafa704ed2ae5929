"""Detection at scale: the simulator's bound, suspicion probes, stalled loops and paused members."""

import pytest

from pycache_cluster.gossip import config
from pycache_cluster.gossip.probe import Probe, StallGuard
from pycache_cluster.gossip.sim import DETECTION_GOAL, DISSEMINATION_GOAL, scenario
from pycache_cluster.gossip.simnet import SimLoop
from pycache_cluster.gossip.state import NodeState, State


@pytest.mark.parametrize("loss", [0.0, 0.10])
def test_crash_is_dead_everywhere_within_the_goal_at_200_members(loss):
    # Virtual time: the figures are a deterministic function of the seed, not of this machine.
    row = scenario("lan", config.lan(), 200, loss, seed=2)
    assert row.crash[1] <= DETECTION_GOAL
    assert max(row.update[1], row.join[1], row.leave[1]) <= DISSEMINATION_GOAL
    assert row.false_dead == 0


def test_a_suspicion_costs_the_cluster_a_bounded_number_of_extra_probes(sim_cluster):
    counts = []
    for seed in (1, 2, 3, 4):
        c = sim_cluster(100, seed=seed, suspicion_probes=2.0)
        c.run(2.0)
        seen = c.watch("dead", "n3")
        c.crash("n3")
        c.run(20.0, lambda seen=seen: len(seen) == 99)
        assert len(seen) == 99 and c.false_dead == []
        counts.append(sum(ml.stats()["suspicion_probes"] for ml in c.members.values()))
    # About suspicion_probes per suspicion message a member hears first, never one from each
    # of the 99 members.
    assert max(counts) <= 12 and sum(counts) >= 4


def test_without_suspicion_probes_nobody_probes_on_hearsay(sim_cluster):
    c = sim_cluster(30, suspicion_probes=0.0)
    c.run(2.0)
    c.crash("n3")
    c.run(20.0)
    assert sum(ml.stats()["suspicion_probes"] for ml in c.members.values()) == 0


def _alive_everywhere(c, name):
    return all(c.states_seen_by(o).get(name) == State.ALIVE for o in c.live() if o != name)


def test_a_member_stopped_and_continued_within_the_timeout_is_never_declared_dead(
        sim_cluster):
    suspected_runs = 0
    for seed in range(1, 7):
        c = sim_cluster(20, seed=seed)
        c.run(3.0)
        cfg = c.config
        low = cfg.suspicion_bounds(20)[0]
        # Stopped for more than two probe periods (long enough to be suspected, when a
        # probe comes its way), resumed before the minimum suspicion timeout has run out.
        pause = low - cfg.probe_interval / 4
        assert pause > 2 * cfg.probe_interval
        c.pause("n3", pause)
        c.run(10.0)
        suspected = sum(ml.stats()["suspicions"] for ml in c.members.values())
        suspected_runs += suspected > 0
        assert c.false_dead == []
        assert _alive_everywhere(c, "n3")
        assert c.members["n3"].stats()["refutations"] >= (suspected > 0)
    assert suspected_runs >= 3          # the pauses were long enough to matter


def test_a_member_stopped_for_longer_than_the_suspicion_timeout_is_declared_dead(sim_cluster):
    # The negative control of the test above: the same pause, long enough, is a death.
    c = sim_cluster(20, seed=1)
    c.run(3.0)
    c.pause("n3", 3 * c.config.suspicion_bounds(20)[1])
    seen = c.watch("dead", "n3")
    c.run(10.0 + 3 * c.config.suspicion_bounds(20)[1], lambda: len(seen) == 19)
    assert len(seen) == 19


def _guard(loop, stall=0.05, grace=0.005):
    stalls = []
    return StallGuard(loop, stall, grace, lambda: stalls.append(loop.time())), stalls


def _probe():
    return Probe(NodeState("x", "10.0.0.1", 7946, 0, State.ALIVE, b"", 0.0), 1, 1.0, False)


class _LateLoop(SimLoop):
    """Every timer runs `late` seconds after it is due, as on a stalled event loop."""

    def __init__(self, late: float):
        super().__init__()
        self.late = late

    def call_later(self, delay, fn, *args):
        return super().call_later(delay + self.late, fn, *args)


def test_a_timer_on_time_judges_at_once():
    loop = SimLoop()
    guard, stalls = _guard(loop)
    fired = []
    guard.arm(_probe(), 0.2, lambda p: fired.append(loop.time()))
    loop.run_until(10)
    assert fired == [pytest.approx(0.2)] and stalls == []


def test_a_late_timer_waits_once_more_so_input_already_received_is_read_first():
    loop = _LateLoop(0.3)
    guard, stalls = _guard(loop)
    fired = []
    probe = _probe()
    guard.arm(probe, 0.2, lambda p: fired.append(loop.time()))
    loop.run_until(10)
    # Due at 0.2, ran at 0.5: put off once by the grace (on this loop, late as well).
    assert stalls == [pytest.approx(0.5)]
    assert fired == [pytest.approx(0.5 + 0.005 + 0.3)]
    assert probe.stalled and probe.deadline == pytest.approx(1.005)


def test_an_ack_read_during_the_grace_saves_the_probe():
    loop = _LateLoop(0.3)
    guard, stalls = _guard(loop)
    fired = []
    probe = _probe()
    guard.arm(probe, 0.2, lambda p: fired.append(loop.time()))
    loop.run_until(0.55)
    probe.done = True           # the ack that sat in the socket
    loop.run_until(10)
    assert len(stalls) == 1
    # The put-off verdict checks the probe itself (the memberlist's handlers return early
    # once a probe is done); the guard hands it over exactly once.
    assert len(fired) == 1


def test_the_guard_can_be_turned_off():
    loop = _LateLoop(0.3)
    guard, stalls = _guard(loop, stall=0.0)
    fired = []
    guard.arm(_probe(), 0.2, lambda p: fired.append(loop.time()))
    loop.run_until(10)
    assert stalls == [] and fired == [pytest.approx(0.5)]


def _stall_after_a_probe(c, name, seconds):
    """Stop `name` for `seconds` right after it sent its next probe's ping."""
    ml = c.members[name]
    probe_node = ml._probe_node

    def probe_then_stall(node, verdict=False):
        probe_node(node, verdict)
        c.pause(name, seconds)
        ml._probe_node = probe_node

    ml._probe_node = probe_then_stall


@pytest.mark.parametrize("guard, suspects", [(0.05, False), (0.0, True)])
def test_a_member_whose_loop_stalled_does_not_accuse_the_member_it_probed(
        sim_cluster, guard, suspects):
    stalls = suspicions = 0
    for seed in range(1, 11):
        c = sim_cluster(10, seed=seed, loop_stall=guard)
        c.run(2.0)
        # The ack comes back at once but waits, unread, while the loop is stalled past the
        # probe's timeout and deadline; on resume, timer and input race.
        _stall_after_a_probe(c, "n0", 0.7)
        c.run(7.0)
        stalls += c.members["n0"].stats()["loop_stalls"]
        suspicions += c.members["n0"].stats()["suspicions"]
        assert c.false_dead == []
    # With the guard the verdict waits for the input; without it (the negative control)
    # some timers win the race and a live member is suspected.
    assert (suspicions > 0) == suspects
    assert (stalls >= 5) == (not suspects)
