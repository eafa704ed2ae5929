"""The binary protocol in a cluster: any node serves any key, replicated and quorum-read as
text requests are (the gate re-speaks binary frames as meta). Checked against one memcached
1.6.18 with the same frames (CAS values normalised), on the owners' copies, with an owner
stopped, and with pylibmc in binary mode."""
import os
import signal
import socket
import struct

import pytest
from helpers.binary import (
    APPEND,
    DELETE,
    GET,
    GETK,
    GETQ,
    INCR,
    NOOP,
    SET,
    SETQ,
    call,
    exchange,
    normalise,
    req,
    store,
)
from helpers.cluster import Fleet, owned_keys, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integration.test_binary_fuzz import frame
from integration.test_binary_protocol import CONVERSATIONS

EXAMPLES = int(os.environ.get("PYCACHE_FUZZ_EXAMPLES", "150"))
ETMPFAIL = 0x86
# Single-node only (docs/protocol.md, "Binary protocol and SASL", in a cluster): memcached copies a value a decr
# shortens while an unwritten reply still holds it, which the owners of a key cannot know.
SINGLE_NODE = {"incr_padding"}


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    """Three nodes, two copies of each key (the defaults: N=2, W=2, R=1)."""
    fleet = Fleet(tmp_path_factory, 201, 3, "--forward-timeout", "2")
    request.addfinalizer(fleet.stop)
    return fleet.start()


def both(fleet, node, memcached, data):
    ours = normalise(exchange(fleet[node].port, req(0x08) + data, host=fleet[node].host))
    theirs = normalise(exchange(memcached.port, req(0x08) + data))
    return ours, theirs


@pytest.mark.parametrize("name", sorted(set(CONVERSATIONS) - SINGLE_NODE))
def test_conversation_through_a_cluster_like_memcached(fleet, memcached, name):
    for node in range(3):
        ours, theirs = both(fleet, node, memcached, CONVERSATIONS[name])
        assert ours == theirs, f"through node {node}"


@settings(max_examples=max(EXAMPLES // 3, 30), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(frames=st.lists(frame(), min_size=1, max_size=10), node=st.integers(0, 2))
def test_generated_frames_through_a_cluster_like_memcached(fleet, memcached, frames, node):
    data = b"".join(frames)
    ours, theirs = both(fleet, node, memcached, data + req(NOOP, opaque=99))
    assert ours == theirs


def test_every_owner_holds_a_binary_write(fleet):
    keys = [b"owned-%d" % i for i in range(30)]
    with fleet[0].conn() as c:
        got = call(c, b"".join(store(SETQ, k, b"v" + k, flags=7) for k in keys))
        assert got == []
    for k in keys:
        owners = fleet[0].call(b"cluster owners " + k + b"\r\n").split()[1:3]
        for node in fleet.nodes:
            if node.name.encode() in owners:
                # me: this node's own copy, never forwarded or merged
                assert b" exp=-1 " in node.call(b"me " + k + b"\r\n")
    for node in fleet.nodes:
        with node.conn() as c:
            got = call(c, b"".join(req(GETK, k) for k in keys))
            assert [(f.status, f.key, f.value, f.extras) for f in got] == \
                [(0, k, b"v" + k, struct.pack(">I", 7)) for k in keys]


def test_cas_from_one_node_works_through_another(fleet):
    with fleet[1].conn() as c:
        (stored,) = call(c, store(SET, b"cas-key", b"one"))
    with fleet[2].conn() as c:
        got = call(c, store(SET, b"cas-key", b"two", cas=stored.cas) +
                   store(SET, b"cas-key", b"three", cas=stored.cas) + req(GET, b"cas-key"))
    assert [f.status for f in got] == [0, 2, 0]
    assert got[2].value == b"two" and got[2].cas == got[0].cas


def test_pipelined_writes_then_reads_keep_their_order(fleet):
    """A connection's read after its write of the same key sees it, whichever node owns it."""
    keys = [b"order-%d" % i for i in range(40)]
    data = b"".join(req(APPEND, k, value=b"x") + store(SETQ, k, b"a") +
                    req(APPEND, k, value=b"b") + arith_incr(k) + req(GETQ, k) for k in keys)
    with fleet[2].conn() as c:
        got = call(c, data)
    per_key = [got[i * 4:i * 4 + 4] for i in range(len(keys))]
    for k, (missing, appended, incr, value) in zip(keys, per_key):
        assert missing.status == 0x05 and appended.status == 0, k
        assert incr.status == 0x06 and value.value == b"ab", k


def arith_incr(key):
    return req(INCR, key, struct.pack(">QQI", 1, 0, 0xFFFFFFFF))


def test_stopped_owner_costs_bounded_time_and_no_wrong_answer(tmp_path_factory):
    """One copy per key and its owner stopped: the binary client hears a temporary failure
    after the forward timeout, and the connection goes on serving other keys."""
    fleet = Fleet(tmp_path_factory, 205, 2, "--replicas", "1", "--write-quorum", "1",
                  "--forward-timeout", "1")
    fleet.start()
    try:
        theirs = owned_keys(fleet, 1, 1)[0]
        mine = owned_keys(fleet, 0, 1)[0]
        with fleet[0].conn() as c:
            assert [f.status for f in call(c, store(SET, theirs, b"v"))] == [0]
            fleet[1].proc.send_signal(signal.SIGSTOP)
            try:
                got = call(c, req(GET, theirs) + store(SET, mine, b"m") + req(GET, mine))
            finally:
                fleet[1].proc.send_signal(signal.SIGCONT)
            assert [f.status for f in got] == [ETMPFAIL, 0, 0]
            assert got[2].value == b"m"
            wait_for(lambda: call(c, req(GET, theirs))[0].status == 0, 10, "owner back")
    finally:
        fleet.stop()


def test_pylibmc_binary_through_any_node(fleet):
    pylibmc = pytest.importorskip("pylibmc")
    clients = [pylibmc.Client([f"{n.host}:{n.port}"], binary=True,
                              behaviors={"cas": True}) for n in fleet.nodes]
    a, b, c = clients
    a.set_multi({f"pl-{i}": i for i in range(50)})
    assert b.get_multi([f"pl-{i}" for i in range(50)]) == {f"pl-{i}": i for i in range(50)}
    assert c.incr("pl-7", 5) == 12
    assert a.get("pl-7") == 12
    value, cas = b.gets("pl-3")
    assert value == 3 and c.cas("pl-3", 33, cas) and not a.cas("pl-3", 34, cas)
    assert b.get("pl-3") == 33
    assert c.delete("pl-3") and a.get("pl-3") is None
    assert a.add("pl-new", "x") and not b.add("pl-new", "y")
    assert c.append("pl-new", "z") and a.get("pl-new") == "xz"


def test_binary_flush_empties_every_node(fleet):
    with fleet[0].conn() as c:
        call(c, store(SET, b"f1", b"v") + store(SET, b"f2", b"v"))
    with fleet[1].conn() as c:
        assert [f.status for f in call(c, req(0x08))] == [0]
    for node in fleet.nodes:
        with node.conn() as c:
            assert [f.status for f in call(c, req(GET, b"f1") + req(GET, b"f2"))] == [1, 1]


def test_long_binary_key_that_is_not_text_is_refused(fleet):
    key = b" " * 187
    with fleet[0].conn() as c:
        got = call(c, req(GET, key) + store(SET, key, b"v") + req(DELETE, b"\n" * 186))
    assert [f.status for f in got] == [0x04, 0x04, 0x01]


def test_a_long_quiet_pipeline_is_paced_and_complete(fleet):
    """More requests in flight than a connection keeps holes for: reading pauses and
    resumes, and every write lands."""
    keys = [b"paced-%d" % i for i in range(12000)]
    with fleet[0].conn(timeout=60) as c:
        assert call(c, b"".join(store(SETQ, k, b"%d" % i) for i, k in enumerate(keys))) == []
    with fleet[1].conn(timeout=60) as c:
        got = call(c, b"".join(req(GETK, k) for k in keys[::97]))
    assert [(f.status, f.key, f.value) for f in got] == \
        [(0, k, b"%d" % i) for i, k in list(enumerate(keys))[::97]]


def test_a_value_of_almost_a_megabyte_goes_through(fleet):
    value = os.urandom(1024 * 1024 - 512)
    with fleet[2].conn() as c:
        assert [f.status for f in call(c, store(SET, b"big-through", value))] == [0]
    with fleet[0].conn() as c:
        (got,) = call(c, req(GET, b"big-through"))
    assert got.status == 0 and got.value == value


def test_a_client_gone_mid_pipeline_costs_the_nodes_nothing(fleet):
    def conns(node):
        with node.conn() as c:
            out = c.call(b"stats\r\n")
        return int(out.split(b"STAT curr_connections ")[1].split(b"\r\n")[0])

    before = [conns(n) for n in fleet.nodes]
    for _ in range(5):
        c = socket.create_connection((fleet[0].host, fleet[0].port))
        c.sendall(b"".join(store(SET, b"gone-%d" % i, b"v") + req(GET, b"gone-%d" % i)
                           for i in range(2000)))
        c.close()
    wait_for(lambda: [conns(n) for n in fleet.nodes] == before, 10, "connections closed")
    with fleet[0].conn() as c:
        assert [f.status for f in call(c, store(SET, b"after", b"v") + req(GET, b"after"))] \
            == [0, 0]
