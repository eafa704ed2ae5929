"""`stats` and its sub-commands: the same names as memcached 1.6.18 (values are our own)."""
import re

from helpers.wire import Conn


def _keys(port, cmd):
    with Conn(port) as c:
        c.expect(b"set a 0 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n")
        out = c.call(cmd)
    assert out.endswith(b"END\r\n"), out
    lines = out.split(b"\r\n")[:-2]
    assert all(re.fullmatch(rb"STAT \S+ \S+", ln) for ln in lines), out
    return [ln.split(b" ")[1] for ln in lines]


def test_general_stats_has_memcached_names_in_order(pycache, memcached):
    ours = _keys(pycache.port, b"stats\r\n")
    theirs = _keys(memcached.port, b"stats\r\n")
    assert [k for k in ours if k in theirs] == theirs
    assert b"pycache_version" in ours


def test_stats_settings_names_are_memcacheds_in_order(pycache, memcached):
    """Every setting memcached 1.6.18 lists but extstore's (ext_*: no external store here)."""
    ours = _keys(pycache.port, b"stats settings\r\n")
    theirs = _keys(memcached.port, b"stats settings\r\n")
    assert ours == [k for k in theirs if not k.startswith(b"ext_")]


def test_stats_items_and_slabs_shapes(pycache, memcached):
    for cmd in (b"stats items\r\n", b"stats slabs\r\n"):
        ours = set(_keys(pycache.port, cmd))
        theirs = set(_keys(memcached.port, cmd))
        assert ours <= theirs, ours - theirs


def test_stats_counters_move(pycache):
    with Conn(pycache.port) as c:
        before = dict(re.findall(rb"STAT (\S+) (\S+)\r\n", c.call(b"stats\r\n")))
        c.call(b"get zz\r\nset zz 0 0 1\r\nx\r\nget zz\r\ntouch zz 10\r\nflush_all\r\nme zz\r\n")
        after = dict(re.findall(rb"STAT (\S+) (\S+)\r\n", c.call(b"stats\r\n")))

    def d(k):
        return int(after[k]) - int(before[k])

    assert (d(b"cmd_get"), d(b"get_hits"), d(b"get_misses")) == (2, 1, 1)
    assert (d(b"cmd_set"), d(b"cmd_touch"), d(b"touch_hits"), d(b"cmd_flush")) == (1, 1, 1, 1)
    assert d(b"cmd_meta") == 1
    assert int(after[b"curr_connections"]) >= 1
    assert int(after[b"bytes_read"]) > int(before[b"bytes_read"])


def test_stats_reset(pycache):
    with Conn(pycache.port) as c:
        c.call(b"get nothing\r\n")
        c.expect(b"stats reset\r\n", b"RESET\r\n")
        stats = dict(re.findall(rb"STAT (\S+) (\S+)\r\n", c.call(b"stats\r\n")))
    assert stats[b"cmd_get"] == b"0" and stats[b"get_misses"] == b"0"


def test_stats_conns_lists_clients(pycache):
    with Conn(pycache.port) as a, Conn(pycache.port) as b:
        a.call(b"version\r\n")
        out = b.call(b"stats conns\r\n")
    assert out.endswith(b"END\r\n")
    addrs = re.findall(rb"STAT \d+:addr (\S+)\r\n", out)
    assert b"tcp:127.0.0.1:%d" % pycache.port in addrs          # the listener
    assert len(addrs) >= 3                                          # and both clients
    assert re.search(rb"STAT \d+:state conn_listening\r\n", out)
