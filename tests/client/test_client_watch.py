"""Client.watch against a real three-node cluster (127.0.0.103-105, two owners per key):
every change of a key in order and once, though both owners stream it; a stream whose
connection breaks resumes without losing anything; one whose node restarted says so."""
from __future__ import annotations

import pytest
from helpers.client import addresses
from helpers.cluster import Fleet

from pycache_cluster.client import Change, Client, Gap


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    fleet = Fleet(tmp_path_factory, 103, 3, "--forward-timeout", "1")
    request.addfinalizer(fleet.stop)
    return fleet.start()


@pytest.fixture
def client(fleet):
    c = Client(addresses(fleet)[:1], refresh_interval=0.5, retry_after=0.2)
    yield c
    c.close()


@pytest.fixture(params=["sync", "async"])
def watcher(request, fleet, make_client):
    """Each client in turn, to watch with."""
    return make_client(request.param, addresses(fleet)[1:2], retry_after=0.2)


def collect(watch, count: int, timeout: float = 10.0) -> list:
    """The next `count` events (fewer if the watch goes quiet for `timeout` seconds)."""
    out = []
    while len(out) < count:
        event = watch.next(timeout)
        if event is None:
            break
        out.append(event)
    return out


def write(client, key: bytes, values) -> list[int]:
    """Sets each value in turn; the versions they were stored at."""
    versions = []
    for value in values:
        assert client.set(key, value) is True
        versions.append(int(client.gets(key)[1]))
    return versions


def test_a_key_written_1000_times_is_seen_1000_times_in_order(client, watcher):
    watch, prefix = watcher.watch(b"hot"), watcher.watch(prefix=b"ho")
    try:
        # Both owners stream the key; a prefix's keys live on every node.
        streams = [len(getattr(w, "streams", None) or w.tasks) for w in (watch, prefix)]
        assert streams == [2, 3]
        client.set(b"cold", b"x")                 # another key: not this watch's
        versions = write(client, b"hot", [b"%d" % i for i in range(1000)])
        assert client.delete(b"hot") is True
        events = collect(watch, 1001)
        assert [(e.key, e.kind) for e in events] == [(b"hot", "set")] * 1000 + \
            [(b"hot", "delete")]
        assert [e.version for e in events[:1000]] == versions
        assert events[1000].version > versions[-1]
        assert {e.node for e in events} <= {o.name for o in client.owners(b"hot")}
        assert [e.version for e in collect(prefix, 1001)][:1000] == versions
        assert watch.next(0.5) is None            # nothing more, nothing twice
    finally:
        watch.close()
        prefix.close()


def test_a_broken_stream_resumes_where_it_was_without_a_gap(client):
    with client.watch(b"resumed") as watch:
        before = write(client, b"resumed", [b"a", b"b"])
        assert [e.version for e in collect(watch, 2)] == before
        for stream in watch.streams.values():
            stream.sock.shutdown(2)               # both owners' connections cut at once
        # Written before the streams reconnect (they wait retry_after first).
        during = write(client, b"resumed", [b"c", b"d", b"e"])
        events = collect(watch, 3)
        assert not [e for e in events if isinstance(e, Gap)]
        assert [e.version for e in events] == during
        assert all(s.position.boot is not None for s in watch.streams.values())


def test_a_watch_across_a_node_restart_reports_the_gap_and_goes_on(fleet, client):
    key = b"restarted"
    owners = [o.name for o in client.owners(key)]
    node = next(n for n in fleet.nodes if n.name == owners[0])
    with client.watch(key) as watch:
        before = write(client, key, [b"1", b"2"])
        assert [e.version for e in collect(watch, 2)] == before
        node.stop()
        node.start()
        fleet.wait_converged()
        # The restarted node is another process: what it streamed before is gone, and so
        # is anything it might have been sent meanwhile. Its stream says so.
        gap = watch.next(15)
        assert gap == Gap(node.name, "restart")
        client.refresh()
        after = write(client, key, [b"3", b"4", b"5"])
        events = collect(watch, 3)
        assert all(isinstance(e, Change) for e in events)
        assert [e.version for e in events] == after and after[0] > before[-1]
