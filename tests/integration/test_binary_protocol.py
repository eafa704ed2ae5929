"""The binary protocol, byte for byte against memcached 1.6.18: the same frames go to our node
and to memcached on one connection each (flushed first), the replies must be the same frames
(CAS values compared by their order of appearance). Then libmemcached's conformance tool and
pylibmc in binary mode against our node."""

import pytest
from helpers.binary import (
    ADD,
    ADDQ,
    APPEND,
    APPENDQ,
    DECR,
    DECRQ,
    DELETE,
    DELETEQ,
    FLUSH,
    FLUSHQ,
    GAT,
    GATK,
    GATKQ,
    GATQ,
    GET,
    GETK,
    GETKQ,
    GETQ,
    INCR,
    INCRQ,
    NOOP,
    PREPEND,
    PREPENDQ,
    QUIT,
    QUITQ,
    REPLACE,
    REPLACEQ,
    SASL_AUTH,
    SASL_LIST,
    SASL_STEP,
    SET,
    SETQ,
    STAT,
    TOUCH,
    VERBOSITY,
    VERSION,
    arith,
    call,
    exchange,
    normalise,
    req,
    store,
    touch,
)
from helpers.wire import Conn, conversation

MISSING = 0xFFFFFFFF    # incr/decr expiration: fail instead of creating the key

CONVERSATIONS = {
    "set_get": store(SET, b"a", b"hello", flags=42) + req(GET, b"a", opaque=7) +
    req(GETK, b"a") + req(GET, b"zz", opaque=9) + req(GETK, b"zz"),
    "quiet_batch": store(SETQ, b"a", b"1") + store(SETQ, b"b", b"2") + req(GETQ, b"a") +
    req(GETQ, b"nope") + req(GETKQ, b"b") + req(GETKQ, b"nope") + req(NOOP, opaque=1),
    "add_replace": store(ADD, b"a", b"x") + store(ADD, b"a", b"y") + store(REPLACE, b"a", b"z") +
    store(REPLACE, b"b", b"z") + store(ADDQ, b"a", b"q") + store(REPLACEQ, b"c", b"q") +
    store(ADDQ, b"d", b"q") + req(GET, b"a") + req(GET, b"d"),
    "cas": store(SET, b"a", b"x") + store(SET, b"a", b"y", cas=1) + store(ADD, b"n", b"y", cas=5) +
    store(REPLACE, b"a", b"y", cas=99999) + req(DELETE, b"a", cas=12345) + req(GET, b"a"),
    "append_prepend": store(SET, b"a", b"mid", flags=3) + req(APPEND, b"a", value=b">") +
    req(PREPEND, b"a", value=b"<") + req(APPENDQ, b"a", value=b"!") +
    req(PREPENDQ, b"zz", value=b"!") + req(APPEND, b"zz", value=b"x") + req(GET, b"a") +
    req(APPEND, b"a", value=b"c", cas=777),
    "delete": store(SET, b"a", b"x") + req(DELETE, b"a") + req(DELETE, b"a") +
    store(SET, b"b", b"x") + req(DELETEQ, b"b") + req(DELETEQ, b"b") + req(GET, b"b"),
    "incr_decr": arith(INCR, b"n", 5, 10) + arith(INCR, b"n", 5) + arith(DECR, b"n", 100) +
    arith(DECR, b"m", 1, 0, MISSING) + arith(INCR, b"m", 1, 7, MISSING) +
    store(SET, b"s", b"abc") + arith(INCR, b"s", 1) + arith(INCRQ, b"n", 3) +
    arith(DECRQ, b"n", 1) + req(GET, b"n") + arith(INCR, b"n", 1, cas=77) +
    store(SET, b"w", b"18446744073709551615") + arith(INCR, b"w", 2) + req(GET, b"w"),
    "incr_padding": store(SET, b"n", b"100") + arith(DECR, b"n", 91) + req(GET, b"n") +
    req(GET, b"n") + arith(DECR, b"n", 1) + req(NOOP) + req(GET, b"n"),
    "touch_gat": store(SET, b"a", b"v", flags=9) + touch(TOUCH, b"a", 100) +
    touch(GAT, b"a", 0) + touch(GATK, b"a", 1000) + touch(GATQ, b"zz", 0) +
    touch(GATKQ, b"zz", 0) + touch(GATKQ, b"a", 0) + touch(TOUCH, b"zz", 0) +
    touch(GAT, b"zz", 0),
    "expired": store(SET, b"a", b"v", exptime=1000000000) + req(GET, b"a") +
    store(SET, b"b", b"v", exptime=MISSING) + req(GET, b"b"),
    "flush": store(SET, b"a", b"v") + req(FLUSH) + req(GET, b"a") + store(SET, b"a", b"v") +
    req(FLUSHQ) + req(GET, b"a") + req(FLUSH, extras=b"\0\0\0\0"),
    "noop_version": req(NOOP, opaque=0x01020304, cas=5) + req(VERSION, opaque=3),
    "quit": store(SET, b"a", b"v") + req(QUIT, opaque=4) + req(NOOP),
    "quitq": req(QUITQ) + req(NOOP),
    "verbosity_is_unknown": req(VERBOSITY, extras=b"\0\0\0\1") + req(NOOP) + req(NOOP),
    "unknown": req(0x55, value=b"vvvv") + req(NOOP) + req(0xFE) + req(NOOP, opaque=2),
    "unknown_overswallows": req(0x55, b"kk", value=b"vv") + req(NOOP) + req(NOOP, opaque=3),
    "sasl_off": req(SASL_LIST) + req(SASL_AUTH, b"PLAIN", value=b"\0a\0b") +
    req(SASL_STEP, b"PLAIN") + req(NOOP),
    "too_large": store(SET, b"big", b"v") + store(SET, b"big", b"x" * (1024 * 1024)) +
    req(GET, b"big") + store(ADD, b"big2", b"x" * (1024 * 1024)) + req(NOOP),
    "key_too_long": req(GET, b"k" * 251) + req(NOOP),
    "key_250": store(SET, b"k" * 250, b"v") + req(GETK, b"k" * 250),
    "binary_key": store(SET, b"a b\r\n\0", b"v") + req(GETK, b"a b\r\n\0"),
    "key_longer_than_body": req(GET, b"k", bodylen=0) + req(NOOP),
    "bad_get_extras": req(GET, b"k", extras=b"\0\0\0\0") + req(NOOP),
    "bad_set_extras": req(SET, b"k", extras=b"\0\0\0\0", value=b"v") + req(NOOP),
    "bad_noop_body": req(NOOP, value=b"x") + req(NOOP),
    "bad_incr": req(INCR, b"n", extras=b"\0" * 8) + req(NOOP),
    "bad_flush": req(FLUSH, extras=b"\0\0") + req(NOOP),
    "append_with_extras": req(APPEND, b"a", extras=b"\0" * 8, value=b"v") + req(NOOP),
    "empty_key_set": req(SET, extras=b"\0" * 8, value=b"v") + req(NOOP),
    "bad_magic": req(NOOP) + req(NOOP, magic=0x81) + req(NOOP),
    "bad_magic_after_quiet": store(SETQ, b"a", b"v") + req(GETQ, b"a") + b"\x00" * 24,
    "gat_body_longer": touch(GAT, b"a", 0, bodylen=33) + req(NOOP, opaque=3),
    "stat_trailing_body": req(STAT, b"reset", value=req(NOOP, opaque=8)),
    "stat_groups": req(STAT, b"bogus") + req(STAT, b"conns") + req(STAT, b"reset") +
    req(STAT, b"resetxx") + req(STAT, b"detail on") + req(STAT, b"detail off") +
    req(STAT, b"detail x") + req(STAT, b"sizes") + req(STAT, b"extstore"),
    "value_cut_short": store(SET, b"a", b"v") + store(SET, b"b", b"0123456789")[:-4],
    "header_cut_short": req(NOOP) + req(NOOP)[:10],
    "opaque_cas_echo": req(GET, b"zz", opaque=0xDEADBEEF, cas=42) +
    store(SET, b"a", b"v", opaque=0xCAFEBABE) + req(DELETE, b"a", opaque=0x11),
}


def _both(pycache, memcached, data: bytes):
    ours = exchange(pycache.port, req(FLUSH) + data)
    theirs = exchange(memcached.port, req(FLUSH) + data)
    return normalise(ours), normalise(theirs)


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_binary_conversation(pycache, memcached, name):
    ours, theirs = _both(pycache, memcached, CONVERSATIONS[name])
    assert ours == theirs


def test_many_quiet_sets_then_noop(pycache, memcached):
    """A long quiet batch (more than memcached's 20 requests a read event) ends with noop."""
    data = b"".join(store(SETQ, b"k%d" % i, b"v%d" % i) for i in range(100))
    data += b"".join(req(GETKQ, b"k%d" % i) for i in range(0, 120, 7)) + req(NOOP)
    ours, theirs = _both(pycache, memcached, data)
    assert ours == theirs


def test_big_value_in_pieces(pycache, memcached):
    """A value larger than a read, sent in pieces, then read back."""
    value = bytes(range(256)) * 2000
    for srv in (pycache, memcached):
        with Conn(srv.port) as c:
            frame = store(SET, b"big", value, flags=1)
            for i in range(0, len(frame), 7000):
                c.send(frame[i:i + 7000])
            got = call(c, req(GET, b"big"))
            assert got[-1].status == 0 and got[-1].value == value, srv


def test_stat_general_and_settings(pycache):
    """`stat` answers one packet per statistic, then an empty one; the text protocol's
    `stats` names the statistics (compared with memcached there)."""
    with Conn(pycache.port) as c:
        got = call(c, req(STAT, opaque=5))
        assert got[-1][1:] == (STAT, 0, b"", b"", b"", 5, 0)
        names = [f.key for f in got[:-1]]
        assert names[:3] == [b"pid", b"uptime", b"time"] and b"curr_items" in names
        got = call(c, req(STAT, b"settings"))
        assert (b"maxbytes", b"67108864") in [(f.key, f.value) for f in got]


def test_text_connection_stays_text(pycache, memcached):
    data = b"version\r\n" + req(NOOP)
    assert conversation(pycache.port, data) == conversation(memcached.port, data)


def test_bad_frames_leave_the_node_serving(pycache):
    for junk in (req(GET, b"k", keylen=60000) + b"x" * 20000, b"\x80" + b"\xff" * 40,
                 req(SET, b"k", extras=b"\0" * 8, bodylen=0xFFFFFFFF)):
        exchange(pycache.port, junk)
    with Conn(pycache.port) as c:
        assert call(c, req(VERSION))[0].value == b"1.6.18"


def test_header_larger_than_memcacheds_read_buffer(pycache, memcached):
    """memcached reads a frame's header, extras and key into 16 KiB: a key claimed longer
    than that closes the connection once the buffer is full, unanswered."""
    data = req(NOOP) + req(GET, b"k", keylen=20000) + b"k" * 17000
    ours, theirs = _both(pycache, memcached, data)
    assert ours == theirs
    assert [f[1] for f in theirs] == [FLUSH, NOOP]


def test_pylibmc_binary(pycache):
    try:
        import pylibmc
    except ImportError as e:
        print(f"pylibmc unavailable: {e}")
        pytest.skip(f"pylibmc does not import: {e}")
    c = pylibmc.Client([f"127.0.0.1:{pycache.port}"], binary=True,
                       behaviors={"cas": True})
    c.flush_all()
    assert c.set("a", "hello") and c.get("a") == "hello"
    assert c.add("n", 10) and c.incr("n", 5) == 15 and c.decr("n", 20) == 0
    assert not c.add("a", "x")
    value, cas = c.gets("a")
    assert value == "hello" and c.cas("a", "new", cas) and not c.cas("a", "old", cas)
    assert c.get_multi(["a", "n", "missing"]) == {"a": "new", "n": 0}
    assert c.append("a", "!") and c.prepend("a", "<") and c.get("a") == "<new!"
    assert c.delete("a") and c.get("a") is None and not c.delete("a")
    assert c.touch("n", 100)
    c.set_multi({"x": 1, "y": b"\0\1"})
    assert c.get_multi(["x", "y"]) == {"x": 1, "y": b"\0\1"}
    assert c.get_stats()[0][1]["curr_items"]
