"""The retransmit-limited queue: one pending update per member, the newest, each sent λ·log times."""

from hypothesis import given
from hypothesis import strategies as st

from pycache_cluster.gossip.broadcast import BroadcastQueue
from pycache_cluster.gossip.config import GossipConfig
from pycache_cluster.gossip.messages import frame


def test_retransmit_limit_follows_cluster_size():
    cfg = GossipConfig(retransmit_mult=4)
    assert [cfg.retransmit_limit(n) for n in (1, 9, 10, 99, 100, 999, 1000)] == [
        4, 4, 8, 8, 12, 12, 16]


def test_newer_update_invalidates_older_one_about_same_member():
    done = []
    q = BroadcastQueue(lambda: 3)
    q.queue("a", b"\x05old", on_done=lambda: done.append("old"))
    q.queue("b", b"\x05other")
    q.queue("a", b"\x06new")
    assert done == ["old"]
    sent = q.get(1000)
    assert frame(b"\x06new") in sent and frame(b"\x05old") not in sent
    assert len(q) == 2


def test_each_broadcast_is_sent_limit_times_then_dropped():
    done = []
    q = BroadcastQueue(lambda: 3)
    q.queue("a", b"\x05a", on_done=lambda: done.append("a"))
    assert [len(q.get(1000)) for _ in range(4)] == [1, 1, 1, 0]
    assert done == ["a"] and len(q) == 0


def test_least_transmitted_goes_first_when_space_is_short():
    q = BroadcastQueue(lambda: 10)
    q.queue("old", b"\x05" + b"o" * 20)
    q.get(100)  # "old" now has one transmission
    q.queue("new", b"\x05" + b"n" * 20)
    assert q.get(30) == [frame(b"\x05" + b"n" * 20)]


def test_get_respects_space():
    q = BroadcastQueue(lambda: 10)
    for i in range(10):
        q.queue(f"m{i}", b"\x05" + bytes(30))
    frames = q.get(100)
    assert sum(len(f) for f in frames) <= 100 and len(frames) == 3


ops = st.lists(st.tuples(st.sampled_from("abcde"), st.booleans()), max_size=60)


@given(ops, st.integers(1, 5))
def test_queue_holds_exactly_the_latest_update_per_member(seq, limit):
    q = BroadcastQueue(lambda: limit)
    latest: dict[str, bytes] = {}
    sent_count: dict[bytes, int] = {}
    for i, (name, do_get) in enumerate(seq):
        payload = b"\x05" + f"{name}{i}".encode()
        q.queue(name, payload)
        latest[name] = frame(payload)
        if do_get:
            for f in q.get(40):
                sent_count[f] = sent_count.get(f, 0) + 1
    pending = set()
    while True:
        got = q.get(10_000)
        if not got:
            break
        for f in got:
            pending.add(f)
            sent_count[f] = sent_count.get(f, 0) + 1
    # Everything still pending at the end is the newest update about its member...
    assert pending <= set(latest.values())
    # ...every newest update was sent exactly `limit` times, nothing more than that.
    assert all(sent_count.get(f) == limit for f in latest.values())
    assert all(c <= limit for c in sent_count.values())


def test_oversized_broadcast_is_handed_out_alone_only_when_asked():
    q = BroadcastQueue(lambda: 2)
    q.queue("big", b"\x05" + bytes(200))
    assert q.get(100) == []
    assert q.get(100, oversize=True) == [frame(b"\x05" + bytes(200))]
