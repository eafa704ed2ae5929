"""Every call of both clients (threaded and asyncio) against a real three-node cluster: the
results are pymemcache's, a plain pymemcache client pointed at one node sees the same data,
and each request goes straight to an owner (no node forwards anything)."""
import time

import pytest
from helpers.client import addresses, cluster_counters, spread
from helpers.cluster import wait_for
from helpers.wire import Conn
from pymemcache.client.base import Client as Pymemcache
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheIllegalInputError,
    MemcacheServerError,
)
from pymemcache.serde import pickle_serde

from pycache_cluster.client import Client, ClusterUnavailable, Owner
from pycache_cluster.client.pool import STALE_AFTER


@pytest.fixture
def plain(fleet):
    """pymemcache pointed at node 1 alone: it reaches every key through that node."""
    c = Pymemcache((fleet[1].host, fleet[1].port), default_noreply=False, timeout=10)
    yield c
    c.close()


def test_reads_and_writes_see_what_a_plain_client_on_one_node_sees(api, plain, fleet):
    keys = spread(fleet, 2, "rw")
    for i, k in enumerate(keys):
        assert api.set(k, b"v%d" % i) is True
    want = {k: b"v%d" % i for i, k in enumerate(keys)}
    assert plain.get_many(keys) == want
    assert api.get_many([*keys, b"rw:absent"]) == want
    assert [api.get(k) for k in keys] == list(want.values())
    assert api.get(b"rw:absent") is None and api.get(b"rw:absent", b"dflt") == b"dflt"
    # Written through one node by the plain client, read where the client routes.
    assert plain.set(keys[0], b"plain", flags=7) is True
    assert api.get(keys[0]) == b"plain"
    # add, replace, append, prepend: on a key of each node.
    for k in keys[:3]:
        assert api.add(k, b"no") is False
        assert api.replace(k, b"mid") is True
        assert api.append(k, b">") is True and api.prepend(k, b"<") is True
        assert plain.get(k) == b"<mid>"
    fresh = spread(fleet, 1, "rw:new")
    for k in fresh:
        assert api.replace(k, b"x") is False and api.append(k, b"x") is False
        assert api.add(k, b"added") is True and plain.get(k) == b"added"
    # delete, touch
    assert api.touch(keys[1], 100) is True and api.touch(b"rw:absent", 100) is False
    ttl = fleet[0].call(b"mg %s t\r\n" % keys[1]).split()
    assert ttl[0] == b"HD" and 95 <= int(ttl[1][1:]) <= 100
    assert api.delete(keys[1]) is True and api.delete(keys[1]) is False
    assert plain.get(keys[1]) is None


def test_gets_cas_and_counters(api, plain, fleet):
    for k in spread(fleet, 1, "cas"):
        assert api.set(k, b"a") is True
        value, cas = api.gets(k)
        assert (value, cas) == plain.gets(k) and value == b"a"
        assert api.cas(k, b"b", cas) is True
        assert api.cas(k, b"c", cas) is False
        assert plain.get(k) == b"b"
        assert api.gets(b"cas:absent") == (None, None)
        assert api.gets(b"cas:absent", b"d", b"0") == (b"d", b"0")
        assert api.cas(b"cas:absent", b"x", cas) is None
        assert api.set(k, b"10") is True
        assert api.incr(k, 5) == 15 and api.decr(k, 20) == 0
        assert plain.get(k) == b"0 "         # memcached pads a shrunk number
        assert api.incr(b"cas:absent", 1) is None and api.decr(b"cas:absent", 1) is None
    keys = spread(fleet, 2, "casm")
    api.set_many({k: b"m" for k in keys})
    many = api.gets_many([*keys, b"casm:absent"])
    assert many == plain.gets_many(keys) and set(many) == set(keys)


def test_multi_key_calls_split_by_owner(api, plain, fleet):
    keys = spread(fleet, 10, "many")
    assert api.set_many({k: b"s" + k for k in keys}) == []
    assert plain.get_many(keys) == {k: b"s" + k for k in keys}
    assert api.get_many(keys) == {k: b"s" + k for k in keys}
    assert api.get_many([]) == {} and api.set_many({}) == []
    assert api.delete_many(keys[::2]) is True
    assert api.get_many(keys) == {k: b"s" + k for k in keys[1::2]}
    assert plain.get_many(keys[::2]) == {}


def test_flush_stats_members_and_owners(api, plain, fleet):
    keys = spread(fleet, 1, "fl")
    for k in keys:
        api.set(k, b"x")
    assert api.flush_all() is True
    assert plain.get_many(keys) == {}
    for node in fleet.nodes:
        assert node.call(b"get " + b" ".join(keys) + b"\r\n") == b"END\r\n"
    stats = api.stats()
    assert set(stats) == {n.name for n in fleet.nodes}
    assert all(isinstance(s[b"curr_connections"], int) for s in stats.values())
    assert stats[fleet[0].name][b"pid"] == fleet[0].proc.pid
    cluster = api.stats("cluster")
    assert {s[b"ring_checksum"] for s in cluster.values()} == {api.ring_checksum.encode()}
    members = api.cluster_members()
    assert {(m.name, m.host, m.port, m.state) for m in members.values()} == \
        {(n.name, n.host, n.gossip_port, "alive") for n in fleet.nodes}
    by_name = {n.name: n for n in fleet.nodes}
    for k in keys:
        reply = fleet[0].call(b"cluster owners %s\r\n" % k).split(b"\r\n")
        names = [line.split()[1].decode() for line in reply if line.startswith(b"OWNER")]
        assert len(names) == 2          # the nodes' default: two owners per key
        assert api.owners(k) == [Owner(n, by_name[n].host, by_name[n].port) for n in names]
        assert api.owners(k, 1) == api.owners(k)[:1]


def test_each_request_goes_to_an_owner_so_no_node_forwards(api, plain, fleet):
    """With two owners per key: reads go to either owner and are answered from its copy;
    writes go to the primary, which applies a plain write and sends it to the other owner
    (a replica write, not a forward) and runs a conditional one itself. A node the client
    had wrongly picked would show up as a forward (reads, conditional writes) or as a second
    replica write sent for one write (plain writes)."""
    keys = [b"route:%d" % i for i in range(60)]
    counters = ("forwarded", "fanout_batches", "replica_writes_sent", "read_repairs",
                "cmd_get", "cmd_set", "cmd_touch")
    before = cluster_counters(fleet, *counters)
    writes = []         # the keys of the writes that replicate, one entry per write
    for k in keys:
        api.set(k, b"1")
        assert api.get(k) == b"1"
        api.gets(k)
        api.touch(k, 0)
        api.incr(k, 1)
        api.append(k, b"0")
        assert api.txn(k).if_value(b"20").then_set(b"21").commit().succeeded
        writes += [k] * 5       # set, touch, incr, append, the transaction's ms
    assert api.get_many(keys) == dict.fromkeys(keys, b"21")
    api.set_many({k: b"2" for k in keys})
    api.update(keys[0], lambda v: v + b"!")
    api.delete_many(keys[:20])
    api.delete(keys[30])
    writes += keys + [keys[0]] + keys[:20] + [keys[30]]
    after = cluster_counters(fleet, *counters)
    owners = {k: [o.name for o in api.owners(k)] for k in keys}
    assert all(len(names) == 2 for names in owners.values())
    for node in fleet.nodes:
        b, a = before[node.name], after[node.name]
        assert a["forwarded"] == b["forwarded"], node.name
        assert a["fanout_batches"] == b["fanout_batches"], node.name
        assert a["read_repairs"] == b["read_repairs"], node.name
        # Each write was sent once, by its primary, to the one other owner.
        assert a["replica_writes_sent"] - b["replica_writes_sent"] == sum(
            owners[k][0] == node.name for k in writes), node.name
        # Every owner applied each touch once (a non-owner none).
        assert a["cmd_touch"] - b["cmd_touch"] == sum(
            node.name in names for names in owners.values()), node.name
        # ...and each node served its share directly.
        assert a["cmd_get"] > b["cmd_get"] and a["cmd_set"] > b["cmd_set"], node.name
    # The same gets sent to one node are not all served there: a key it does not own is
    # asked of both owners, and one it owns but does not hold (deleted) of the other owner.
    # The counter does count.
    via = fleet[1]
    start = via.stats("cluster")["forwarded"]
    gone = set(keys[:20]) | {keys[30]}
    for k in keys:
        assert plain.get(k) == (None if k in gone else b"2")
    assert via.stats("cluster")["forwarded"] - start == sum(
        2 if via.name not in owners[k] else 1 if k in gone else 0 for k in keys)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_serializer_and_a_key_prefix_as_pymemcache_has_them(fleet, make_client, kind):
    client = make_client(kind, addresses(fleet)[2:], serde=pickle_serde, key_prefix=b"app:")
    plain = Pymemcache((fleet[0].host, fleet[0].port), serde=pickle_serde, timeout=10,
                       default_noreply=False)
    values = {"dict": {"a": [1, 2]}, "int": 7, "text": "héllo", "raw": b"\x00\xff"}
    before = cluster_counters(fleet, "forwarded")
    assert client.set_many(values) == []
    assert {k: client.get(k) for k in values} == values
    assert client.get_many(list(values)) == values
    assert client.txn("dict").if_value({"a": [1, 2]}).then_set({"a": 3}).commit().succeeded
    assert client.update("int", lambda v: v * 6) == 42
    # Routed by the prefixed key, as the nodes hash it: nothing was forwarded.
    assert cluster_counters(fleet, "forwarded") == before
    reply = fleet[1].call(b"cluster owners app:int\r\n").split(b"\r\n")
    owners = [line.split()[1].decode() for line in reply if line.startswith(b"OWNER")]
    assert [o.name for o in client.owners("int")] == owners
    # Prefixed and pickled as pymemcache does.
    values.update({"dict": {"a": 3}, "int": 42})
    assert {k: plain.get("app:" + k) for k in values} == values
    plain.close()


def test_bad_input_and_error_replies_raise_pymemcache_errors(api):
    with pytest.raises(MemcacheIllegalInputError):
        api.set(b"has space", b"v")
    with pytest.raises(MemcacheIllegalInputError):
        api.get(b"k" * 251)
    api.set(b"text", b"abc")
    with pytest.raises(MemcacheClientError):
        api.incr(b"text", 1)
    with pytest.raises(MemcacheServerError):
        api.set(b"huge", b"x" * (2 << 20))      # over the 1 MB item limit
    assert api.get(b"text") == b"abc"            # the connection is still usable
    assert api.set(b"quiet", b"q", noreply=True) is True
    # Not acknowledged, so not promised to have reached the owner a read goes to (either
    # of two) by the time the call returns: it gets there, though.
    wait_for(lambda: api.get(b"quiet") == b"q", 10, "the noreply write to be read back")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_bootstraps_from_any_reachable_seed_and_fails_when_none_answers(fleet, make_client,
                                                                         kind):
    client = make_client(kind, ["127.0.0.1:1", *addresses(fleet)[2:]])
    assert sorted(client.topology.names) == sorted(n.name for n in fleet.nodes)
    with pytest.raises(ClusterUnavailable):
        make_client(kind, ["127.0.0.1:1", "127.0.0.1:2"])


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_node_without_a_cluster_is_a_ring_of_one(pycache, make_client, kind):
    client = make_client(kind, [f"127.0.0.1:{pycache.port}"])
    assert client.topology.standalone and client.topology.names == [f"127.0.0.1:{pycache.port}"]
    assert client.set(b"solo", b"1") and client.get_many([b"solo", b"x"]) == {b"solo": b"1"}
    assert client.txn(b"solo").if_value(b"1").then_set(b"2").commit().succeeded
    assert client.get(b"solo") == b"2"


def test_an_idle_connection_is_checked_without_waiting_and_kept(pycache):
    """A pooled connection idle past STALE_AFTER is peeked at before use (the node may have
    hung up). A live one is used again: the node sees no new connection."""
    with Client([f"127.0.0.1:{pycache.port}"], timeout=30.0, refresh_interval=600) as client:
        assert client.set(b"idle", b"1")
        before = total_connections(pycache.port)
        time.sleep(STALE_AFTER + 0.2)
        assert client.get(b"idle") == b"1"
        after = total_connections(pycache.port)
    assert after - before == 1, "only the connection asking for stats is new"


def total_connections(port: int) -> int:
    with Conn(port) as c:
        stats = c.call(b"stats\r\n")
    return int(stats.split(b"STAT total_connections ")[1].split(b"\r\n")[0])
