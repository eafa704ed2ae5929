"""Lifeguard timers: the suspicion timeout shrinks with confirmations; awareness scales timeouts."""

import math

import pytest

from pycache_cluster.gossip.awareness import Awareness
from pycache_cluster.gossip.config import GossipConfig, lan, memberlist_defaults
from pycache_cluster.gossip.simnet import SimLoop
from pycache_cluster.gossip.suspicion import Suspicion, remaining


def test_remaining_falls_from_max_to_min_logarithmically():
    values = [remaining(n, 3, 0.0, 2.0, 12.0) for n in range(5)]
    assert values[0] == 12.0 and values[3] == 2.0 and values[4] == 2.0
    assert values[0] > values[1] > values[2] > values[3]
    # The first confirmation buys the most.
    assert values[0] - values[1] > values[1] - values[2] > values[2] - values[3]
    assert remaining(1, 3, 5.0, 2.0, 12.0) == pytest.approx(values[1] - 5.0)


def fire_time(confirm_at: list[tuple[float, str]], wanted=2, low=2.0, high=12.0):
    loop = SimLoop()
    fired = []
    s = Suspicion(loop, "accuser", wanted, low, high, lambda: fired.append(loop.time()))
    for t, who in confirm_at:
        loop.call_later(t, s.confirm, who)
    loop.run_until(100)
    return fired


def test_unconfirmed_suspicion_fires_at_max():
    assert fire_time([]) == [12.0]


def test_confirmations_shorten_the_timer_but_never_below_min():
    fired = fire_time([(1.0, "b"), (1.5, "c")])
    assert fired == [2.0]


def test_a_late_confirmation_fires_at_once_and_only_once():
    assert fire_time([(9.0, "b"), (9.5, "c")]) == [9.0]


def test_duplicate_and_self_confirmations_do_not_count():
    loop = SimLoop()
    s = Suspicion(loop, "a", 2, 2.0, 12.0, lambda: None)
    assert s.confirm("b") and not s.confirm("b") and not s.confirm("a")
    assert s.confirmations == 1 and not s.confirmed
    assert s.confirm("c") and s.confirmed and not s.confirm("d")


def test_suspicion_bounds_scale_with_cluster_size():
    cfg = memberlist_defaults()
    low, high, wanted = cfg.suspicion_bounds(1000)
    assert (low, high, wanted) == (pytest.approx(12.0), pytest.approx(72.0), 2)
    assert cfg.suspicion_bounds(5)[:2] == (4.0, 24.0)
    # Too few members to ever get the confirmations: none are waited for.
    assert cfg.suspicion_bounds(3)[2] == 0
    ours = lan()
    low, high, wanted = ours.suspicion_bounds(1000)
    assert low == pytest.approx(ours.suspicion_mult * 3 * ours.probe_interval)
    assert high == pytest.approx(ours.suspicion_max_mult * low)
    assert wanted == ours.suspicion_confirmations == 2
    # Four members: two others to confirm besides the accuser; three: none to wait for.
    assert ours.suspicion_bounds(4)[2] == 2 and ours.suspicion_bounds(3)[2] == 0


def test_awareness_is_bounded_and_scales_timeouts():
    a = Awareness(8)
    a.apply(-3)
    assert a.score == 0 and a.scale(0.5) == 0.5
    a.apply(3)
    assert a.scale(0.5) == 2.0
    a.apply(100)
    assert a.score == 7 and a.scale(1.0) == 8.0


def test_push_pull_interval_grows_for_large_clusters():
    cfg = GossipConfig(push_pull_interval=30.0)
    assert cfg.push_pull_period(32) == 30.0
    assert cfg.push_pull_period(1000) == 30.0 * (math.ceil(math.log2(1000 / 32)) + 1)
