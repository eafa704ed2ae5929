"""Byte-exact conversations in memcached's text protocol, run against our node and memcached."""
import re

import pytest

CASES = [
    # storage
    ("set_get", b"set a 0 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("set_flags", b"set a 4294967295 0 2\r\nxy\r\nget a\r\n",
     b"STORED\r\nVALUE a 4294967295 2\r\nxy\r\nEND\r\n"),
    ("set_empty", b"set a 0 0 0\r\n\r\nget a\r\n", b"STORED\r\nVALUE a 0 0\r\n\r\nEND\r\n"),
    ("set_binary_value", b"set a 0 0 4\r\n\r\n\x00\n\r\nget a\r\n",
     b"STORED\r\nVALUE a 0 4\r\n\r\n\x00\n\r\nEND\r\n"),
    ("set_noreply", b"set a 0 0 1 noreply\r\nx\r\nget a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
    ("add", b"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nget a\r\n",
     b"STORED\r\nNOT_STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("replace", b"replace a 0 0 1\r\nx\r\nset a 0 0 1\r\nx\r\nreplace a 5 0 1\r\ny\r\nget a\r\n",
     b"NOT_STORED\r\nSTORED\r\nSTORED\r\nVALUE a 5 1\r\ny\r\nEND\r\n"),
    ("append_prepend",
     (b"append a 0 0 1\r\nx\r\nset a 3 0 1\r\nb\r\nappend a 0 0 1\r\nc\r\nprepend a 9 0 1\r\na\r\n"
      b"get a\r\n"),
     b"NOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE a 3 3\r\nabc\r\nEND\r\n"),
    ("cas_missing", b"cas a 0 0 1 1\r\nx\r\n", b"NOT_FOUND\r\n"),
    ("cas_bad_value", b"set a 0 0 1\r\nx\r\ncas a 0 0 1 999999999\r\ny\r\n",
     b"STORED\r\nEXISTS\r\n"),
    ("cas_noreply", b"cas a 0 0 1 1 noreply\r\nx\r\n", b""),
    ("bad_data_chunk", b"set a 0 0 1\r\nxy\r\nget a\r\n",
     b"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"),
    ("bad_data_chunk_noreply", b"set a 0 0 1 noreply\r\nxyz\r\n", b"ERROR\r\n"),
    ("bare_lf_terminator", b"set a 0 0 1\nx\r\nget a\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("set_bad_flags", b"set a x 0 1\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    ("set_negative_flags", b"set a -1 0 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    ("set_bad_length", b"set a 0 0 -1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("set_huge_length", b"set a 0 0 2147483647\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("set_truncated_length", b"set a 0 0 4294967297\r\nx\r\nget a\r\n",
     b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("set_tab_after_number", b"set a 0 0 1\tjunk\r\nx\r\n", b"STORED\r\n"),
    ("set_too_few_tokens", b"set a 0 0\r\n", b"ERROR\r\n"),
    ("set_too_many_tokens", b"set a 0 0 1 noreply x\r\n", b"ERROR\r\n"),
    ("set_expired", b"set a 0 -1 1\r\nx\r\nget a\r\n", b"STORED\r\nEND\r\n"),
    ("set_absolute_past", b"set a 0 1000000000 1\r\nx\r\nget a\r\n", b"STORED\r\nEND\r\n"),
    ("set_future", b"set a 0 1000 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("key_250_ok", b"set " + b"k" * 250 + b" 0 0 1\r\nx\r\n", b"STORED\r\n"),
    ("key_251_set", b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    ("key_251_get", b"get " + b"k" * 251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("key_251_get_drops_unsent", b"version\r\nget a " + b"k" * 251 + b"\r\n",
     b"CLIENT_ERROR bad command line format\r\n"),
    # retrieval
    ("get_miss", b"get a\r\n", b"END\r\n"),
    ("get_multi", b"set a 0 0 1\r\n1\r\nset c 0 0 1\r\n3\r\nget a b c\r\n",
     b"STORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nVALUE c 0 1\r\n3\r\nEND\r\n"),
    ("get_no_key", b"get\r\n", b"ERROR\r\n"),
    ("get_extra_spaces", b"set a 0 0 1\r\nx\r\nget   a   \r\n",
     b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("gat", b"set a 0 0 1\r\nx\r\ngat 100 a b\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("gat_expire", b"set a 0 0 1\r\nx\r\ngat -1 a\r\nget a\r\n",
     b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nEND\r\n"),
    ("gat_bad_exptime", b"gat x a\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    ("gat_no_key", b"gat 10\r\n", b"END\r\n"),
    ("bget", b"set a 0 0 1\r\nx\r\nbget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    # delete
    ("delete", b"set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\nget a\r\n",
     b"STORED\r\nDELETED\r\nNOT_FOUND\r\nEND\r\n"),
    ("delete_hold_zero", b"set a 0 0 1\r\nx\r\ndelete a 0\r\n", b"STORED\r\nDELETED\r\n"),
    ("delete_noreply", b"delete a noreply\r\ndelete a 0 noreply\r\n", b""),
    ("delete_bad", b"delete a 1\r\ndelete a x y\r\n",
     b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n" * 2),
    ("delete_too_many", b"delete a 0 noreply x\r\n", b"ERROR\r\n"),
    # incr / decr
    ("incr", b"set n 0 0 2\r\n10\r\nincr n 5\r\nget n\r\n",
     b"STORED\r\n15\r\nVALUE n 0 2\r\n15\r\nEND\r\n"),
    ("incr_grows", b"set n 0 0 2\r\n99\r\nincr n 1\r\nget n\r\n",
     b"STORED\r\n100\r\nVALUE n 0 3\r\n100\r\nEND\r\n"),
    ("decr_pads_with_spaces", b"set n 0 0 3\r\n100\r\ndecr n 95\r\nget n\r\n",
     b"STORED\r\n5\r\nVALUE n 0 3\r\n5  \r\nEND\r\n"),
    # memcached pads in place only when no unwritten reply still holds the item (mg does)
    ("decr_after_unwritten_mg", b"set n 0 0 2\r\n10\r\nmg n v\r\ndecr n 1\r\nget n\r\n",
     b"STORED\r\nVA 2\r\n10\r\n9\r\nVALUE n 0 1\r\n9\r\nEND\r\n"),
    ("decr_after_written_mg", b"set n 0 0 2\r\n10\r\nmg n v\r\nget x\r\ndecr n 1\r\nget n\r\n",
     b"STORED\r\nVA 2\r\n10\r\nEND\r\n9\r\nVALUE n 0 2\r\n9 \r\nEND\r\n"),
    ("decr_floor", b"set n 0 0 1\r\n5\r\ndecr n 10\r\n", b"STORED\r\n0\r\n"),
    ("incr_wraps", b"set n 0 0 20\r\n18446744073709551615\r\nincr n 2\r\n", b"STORED\r\n1\r\n"),
    ("incr_missing", b"incr n 1\r\ndecr n 1\r\n", b"NOT_FOUND\r\nNOT_FOUND\r\n"),
    ("incr_non_numeric", b"set n 0 0 1\r\nx\r\nincr n 1\r\n",
     b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    ("incr_bad_delta", b"incr n x\r\nincr n -1\r\n",
     b"CLIENT_ERROR invalid numeric delta argument\r\n" * 2),
    ("incr_noreply", b"set n 0 0 1\r\n1\r\nincr n 1 noreply\r\nget n\r\n",
     b"STORED\r\nVALUE n 0 1\r\n2\r\nEND\r\n"),
    ("incr_wrong_tokens", b"incr n\r\n", b"ERROR\r\n"),
    # touch
    ("touch", b"set a 0 0 1\r\nx\r\ntouch a 100\r\ntouch b 100\r\n",
     b"STORED\r\nTOUCHED\r\nNOT_FOUND\r\n"),
    ("touch_expire", b"set a 0 0 1\r\nx\r\ntouch a -1\r\nget a\r\n",
     b"STORED\r\nTOUCHED\r\nEND\r\n"),
    ("touch_bad", b"touch a x\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    ("touch_noreply", b"touch a 1 noreply\r\n", b""),
    # flush_all
    ("flush_all", b"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n", b"STORED\r\nOK\r\nEND\r\n"),
    ("flush_all_zero", b"flush_all 0\r\n", b"OK\r\n"),
    ("flush_all_noreply", b"flush_all noreply\r\nflush_all 0 noreply\r\n", b""),
    ("flush_all_bad", b"flush_all x\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    ("flush_all_delayed", b"set a 0 0 1\r\nx\r\nflush_all 100\r\nget a\r\n",
     b"STORED\r\nOK\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("flush_all_too_many", b"flush_all 1 noreply x\r\n", b"ERROR\r\n"),
    # misc
    ("version", b"version\r\n", b"VERSION 1.6.18\r\n"),
    ("verbosity", b"verbosity 1\r\nverbosity 0 noreply\r\nverbosity x\r\nverbosity\r\n",
     b"OK\r\nCLIENT_ERROR bad command line format\r\nERROR\r\n"),
    ("unknown", b"bogus\r\nxx\r\nx\r\n\r\n\n \r\n", b"ERROR\r\n" * 6),
    ("nul_truncates_line", b"version\x00junk\r\n", b"VERSION 1.6.18\r\n"),
    ("shutdown_disabled", b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n"),
    ("cache_memlimit", (b"cache_memlimit 100\r\ncache_memlimit 64 noreply\r\ncache_memlimit 7\r\n"
      b"cache_memlimit 2000000000\r\ncache_memlimit x\r\n"),
     (b"OK\r\nMEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
      b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\nERROR\r\n")),
    ("stats_reset", b"stats reset\r\n", b"RESET\r\n"),
    ("stats_unknown", b"stats bogus\r\n", b"ERROR\r\n"),
    ("stats_detail", b"stats detail\r\nstats detail on\r\nstats detail off\r\n",
     b"CLIENT_ERROR usage: stats detail on|off|dump\r\nOK\r\nOK\r\n"),
    # memcached's own machinery: same syntax and errors, valid requests acknowledged
    ("slabs_automove", (b"slabs automove 1\r\nslabs automove 3\r\nslabs automove x\r\n"
      b"slabs automove ratio 0.5\r\nslabs automove ratio\r\nslabs\r\n"),
     b"OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nOK\r\nERROR\r\nERROR\r\n"),
    ("lru_crawler", (b"lru_crawler crawl 1\r\nlru_crawler tocrawl x\r\n"
      b"lru_crawler sleep 2000000\r\nlru_crawler\r\n"),
     (b"OK\r\nCLIENT_ERROR bad command line format\r\n"
      b"CLIENT_ERROR sleep must be one second or less\r\nERROR\r\n")),
    ("lru", (b"lru tune 10 10 0.1 2\r\nlru tune 50 50 0.1 2\r\nlru tune 10 10 0 2\r\n"
      b"lru mode x\r\nlru x\r\nlru\r\n"),
     (b"OK\r\nERROR hot and warm pcts must not exceed 80\r\n"
      b"ERROR hot/warm age factors must be greater than 0\r\nERROR\r\nERROR\r\nERROR\r\n")),
    ("stats_misc", b"stats sizes\r\nstats cachedump\r\nstats detail dump\r\n",
     b"STAT sizes_status disabled\r\nEND\r\nCLIENT_ERROR bad command line\r\nEND\r\n"),
    ("too_large", b"set a 0 0 2000000\r\n" + b"z" * 2000000 + b"\r\nget a\r\n",
     b"SERVER_ERROR object too large for cache\r\nEND\r\n"),
    ("too_large_set_deletes_old",
     b"set a 0 0 1\r\nx\r\nset a 0 0 1048577\r\n" + b"z" * 1048577 + b"\r\nget a\r\n",
     b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n"),
    ("too_large_noreply_silent",
     b"set a 0 0 1\r\nx\r\nset a 0 0 1048577 noreply\r\n" + b"z" * 1048577 + b"\r\nget a\r\n",
     b"STORED\r\nEND\r\n"),
    ("too_large_add_keeps_old",
     b"set a 0 0 1\r\nx\r\nadd a 0 0 1048577\r\n" + b"z" * 1048577 + b"\r\nget a\r\n",
     b"STORED\r\nSERVER_ERROR object too large for cache\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    ("append_too_large", b"set a 0 0 1\r\nx\r\nappend a 0 0 1048516\r\n" + b"z" * 1048516
     + b"\r\n", b"STORED\r\nNOT_STORED\r\n"),
]


@pytest.mark.parametrize("send,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conversation(conn, send, want):
    conn.expect(send, want)


def test_largest_item_fits(conn):
    # memcached's -I 1m limit, by its own formula: 56 + key + 1 + value + 2 bytes.
    n = 1048576 - 56 - 1 - 1 - 2
    conn.expect(b"set a 0 0 %d\r\n%s\r\n" % (n, b"v" * n), b"STORED\r\n")
    conn.expect(b"set a 0 0 %d\r\n%s\r\n" % (n + 1, b"v" * (n + 1)),
                b"SERVER_ERROR object too large for cache\r\n")


def test_gets_and_cas(conn):
    conn.expect(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n")
    reply = conn.call(b"gets a\r\n")
    m = re.fullmatch(rb"VALUE a 0 1 (\d+)\r\nx\r\nEND\r\n", reply)
    assert m, reply
    cas = int(m.group(1))
    conn.expect(b"cas a 0 0 1 %d\r\ny\r\n" % (cas + 1), b"EXISTS\r\n")
    conn.expect(b"cas a 0 0 1 %d\r\ny\r\n" % cas, b"STORED\r\n")
    conn.expect(b"cas a 0 0 1 %d\r\nz\r\n" % cas, b"EXISTS\r\n")
    m2 = re.fullmatch(rb"VALUE a 0 1 (\d+)\r\ny\r\nEND\r\n", conn.call(b"gets a\r\n"))
    assert m2 and int(m2.group(1)) != cas
    # gats returns the CAS too, and touching does not change it.
    m3 = re.fullmatch(rb"VALUE a 0 1 (\d+)\r\ny\r\nEND\r\n", conn.call(b"gats 100 a\r\n"))
    assert m3 and m3.group(1) == m2.group(1)


def test_incr_changes_cas(conn):
    conn.expect(b"set n 0 0 1\r\n1\r\n", b"STORED\r\n")
    c1 = re.search(rb" (\d+)\r\n", conn.call(b"gets n\r\n")).group(1)
    conn.expect(b"incr n 1\r\n", b"2\r\n")
    c2 = re.search(rb" (\d+)\r\n", conn.call(b"gets n\r\n")).group(1)
    assert c1 != c2


def test_many_keys_in_one_get(conn):
    # More keys than memcached's 24-token tokenizer pass: it re-tokenizes the rest.
    keys = [b"k%d" % i for i in range(100)]
    for k in keys[::2]:
        conn.expect(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(k), k), b"STORED\r\n")
    want = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(k), k) for k in keys[::2]) + b"END\r\n"
    conn.expect(b"get " + b" ".join(keys) + b"\r\n", want)


def test_huge_multiget_line(conn):
    # A get line longer than 2048 bytes is fine (memcached grows its buffer for multigets).
    keys = [b"key%04d" % i for i in range(600)]
    conn.expect(b"set key0001 0 0 1\r\nx\r\n", b"STORED\r\n")
    conn.expect(b"get " + b" ".join(keys) + b"\r\n", b"VALUE key0001 0 1\r\nx\r\nEND\r\n")


def test_pipelined_replies_in_order(conn):
    send = b"".join(b"set k%d 0 0 1\r\n%d\r\nget k%d\r\n" % (i, i % 10, i) for i in range(300))
    want = b"".join(b"STORED\r\nVALUE k%d 0 1\r\n%d\r\nEND\r\n" % (i, i % 10) for i in range(300))
    conn.expect(send, want)


def test_value_split_across_packets(conn):
    conn.send(b"set a 0 0 10\r\n01234")
    conn.send(b"56789\r")
    conn.expect(b"\n", b"STORED\r\n")
    conn.send(b"ge")
    conn.expect(b"t a\r\n", b"VALUE a 0 10\r\n0123456789\r\nEND\r\n")


def test_quit_closes(server):
    from helpers.wire import Conn

    with Conn(server.port) as c:
        c.send(b"version\r\nquit\r\nversion\r\n")
        assert c.read_to_eof() == b"VERSION 1.6.18\r\n"


def test_long_line_without_newline_closes(server):
    from helpers.wire import Conn

    with Conn(server.port) as c:
        c.send(b"set " + b"x" * 3000)
        assert c.read_to_eof() == b""


def test_long_get_line_without_newline_is_kept(server):
    from helpers.wire import Conn

    with Conn(server.port) as c:
        c.send(b"get " + b"x " * 2000)
        c.expect(b"\r\n", b"END\r\n")


def test_http_request_closes(server):
    from helpers.wire import Conn

    with Conn(server.port) as c:
        c.send(b"GET / HTTP/1.1\r\n")
        assert c.read_to_eof() == b""
