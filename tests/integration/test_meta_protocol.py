"""Byte-exact conversations in memcached's meta protocol (mg ms md ma mn me), on both servers."""
import base64
import re

import pytest

CASES = [
    # ms and its modes
    ("ms_basic", b"ms a 2\r\nhi\r\nmg a v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    ("ms_flags_ttl", b"ms a 1 F5 T100\r\nx\r\nmg a f v\r\n", b"HD\r\nVA 1 f5\r\nx\r\n"),
    ("ms_quiet", b"ms a 1 q\r\nx\r\nmg a v\r\n", b"VA 1\r\nx\r\n"),
    ("ms_opaque_key", b"ms a 1 O123 k\r\nx\r\n", b"HD O123 ka\r\n"),
    ("ms_mode_add", b"ms a 1 ME\r\nx\r\nms a 1 ME\r\ny\r\n", b"HD\r\nNS\r\n"),
    ("ms_mode_replace", b"ms a 1 MR\r\nx\r\nms a 1\r\nx\r\nms a 1 MR\r\ny\r\nmg a v\r\n",
     b"NS\r\nHD\r\nHD\r\nVA 1\r\ny\r\n"),
    ("ms_mode_append_prepend",
     b"ms a 1 MA\r\nx\r\nms a 1\r\nb\r\nms a 1 MA\r\nc\r\nms a 1 MP\r\na\r\nmg a v\r\n",
     b"NS\r\nHD\r\nHD\r\nHD\r\nVA 3\r\nabc\r\n"),
    ("ms_mode_set", b"ms a 1 MS\r\nx\r\n", b"HD\r\n"),
    ("ms_mode_lowercase", b"ms a 1 Ms\r\nx\r\n",
     b"CLIENT_ERROR invalid mode for ms M token\r\n"),
    ("ms_mode_invalid", b"ms a 1 MX\r\nx\r\n", b"CLIENT_ERROR invalid mode for ms M token\r\n"),
    ("ms_mode_bad_length", b"ms a 1 MSS\r\nx\r\n",
     b"CLIENT_ERROR incorrect length for M token\r\n"),
    ("ms_cas_missing", b"ms a 1 C99999999\r\nx\r\n", b"NF\r\n"),
    ("ms_cas_mismatch", b"ms a 1\r\nx\r\nms a 1 C99999999\r\ny\r\n", b"HD\r\nEX\r\n"),
    ("ms_cas_mismatch_quiet", b"ms a 1\r\nx\r\nms a 1 C99999999 q\r\ny\r\n", b"HD\r\nEX\r\n"),
    ("ms_invalid_flag_swallows", b"ms a 1 E5\r\nx\r\n", b"CLIENT_ERROR invalid flag\r\n"),
    ("ms_duplicate_flag", b"ms a 1 T1 T2\r\nx\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
    ("ms_bad_token", b"ms a 1 Tx\r\nx\r\n",
     b"CLIENT_ERROR bad token in command line format\r\n"),
    ("ms_bad_flags_value", b"ms a 1 Fx\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("ms_no_length", b"ms a\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("ms_bad_length", b"ms a x\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("ms_negative_length", b"ms a -1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("ms_no_key", b"ms\r\n", b"ERROR\r\n"),
    ("ms_bad_chunk", b"ms a 1\r\nxy\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    ("ms_bad_chunk_quiet", b"ms a 1 q\r\nxy\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    ("ms_opaque_too_long", b"ms a 1 O" + b"9" * 40 + b"\r\nx\r\n",
     b"CLIENT_ERROR opaque token too long\r\n"),
    ("ms_key_too_long", b"ms " + b"k" * 251 + b" 1\r\nx\r\n",
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    ("ms_too_large", b"ms a 1\r\nx\r\nms a 2000000\r\n" + b"z" * 2000000 + b"\r\nmg a v\r\n",
     b"HD\r\nSERVER_ERROR object too large for cache\r\nEN\r\n"),
    ("ms_base64_key", b"ms Zm9v 1 b k\r\nx\r\nmg foo v\r\nmg Zm9v b k v\r\n",
     b"HD kZm9v b\r\nVA 1\r\nx\r\nVA 1 kZm9v b\r\nx\r\n"),
    ("ms_bad_base64", b"ms !!!! 1 b\r\nx\r\n", b"CLIENT_ERROR error decoding key\r\n"),
    ("ms_invalidate_flag_accepted", b"ms a 1 I\r\nx\r\n", b"HD\r\n"),
    # mg
    ("mg_miss", b"mg a v\r\n", b"EN\r\n"),
    ("mg_miss_quiet", b"mg a v q\r\n", b""),
    ("mg_miss_opaque_key", b"mg a v O7 k\r\n", b"EN O7 ka\r\n"),
    ("mg_hit_no_value", b"ms a 1\r\nx\r\nmg a\r\n", b"HD\r\nHD\r\n"),
    ("mg_hit_quiet", b"ms a 1\r\nx\r\nmg a q\r\nmg a v q\r\n", b"HD\r\nHD\r\nVA 1\r\nx\r\n"),
    ("mg_flags", b"ms a 3 F9\r\nabc\r\nmg a s f t k O1 v\r\n", b"HD\r\nVA 3 s3 f9 t-1 ka O1\r\nabc\r\n"),
    ("mg_hit_flag", b"ms a 1\r\nx\r\nmg a h\r\nmg a h\r\n", b"HD\r\nHD h0\r\nHD h1\r\n"),
    ("mg_no_update", b"ms a 1\r\nx\r\nmg a u\r\nmg a h\r\n", b"HD\r\nHD\r\nHD h0\r\n"),
    ("mg_last_access", b"ms a 1\r\nx\r\nmg a l\r\n", b"HD\r\nHD l0\r\n"),
    ("mg_touch", b"ms a 1\r\nx\r\nmg a T-1\r\nmg a\r\n", b"HD\r\nHD\r\nEN\r\n"),
    ("mg_touch_ttl_order", b"ms a 1\r\nx\r\nmg a T0 t\r\n", b"HD\r\nHD t-1\r\n"),
    ("mg_vivify", b"mg a N30 s\r\nmg a s\r\n", b"HD s0 W\r\nHD s0 Z\r\n"),
    ("mg_recache", b"ms a 1 T30\r\nx\r\nmg a R60\r\nmg a R60\r\n", b"HD\r\nHD W\r\nHD Z\r\n"),
    ("mg_bad_token", b"mg a Nx\r\n", b"CLIENT_ERROR bad token in command line format\r\n"),
    ("mg_invalid_flag", b"mg a Z\r\nmg a W\r\nmg a E1\r\n", b"CLIENT_ERROR invalid flag\r\n" * 3),
    ("mg_duplicate", b"mg a v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
    ("mg_no_key", b"mg\r\n", b"ERROR\r\n"),
    ("mg_key_too_long", b"mg " + b"k" * 251 + b" v\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("mg_too_many_flags", b"mg a " + b" ".join(b"O%d" % i for i in range(20)) + b"\r\n",
     b"CLIENT_ERROR options flags are too long\r\n"),
    ("mg_opaque_too_long", b"ms a 1\r\nx\r\nmg a O" + b"1" * 40 + b"\r\nmg b O" + b"1" * 40 + b"\r\n",
     b"HD\r\nCLIENT_ERROR opaque token too long\r\nCLIENT_ERROR opaque token too long\r\n"),
    ("mg_base64", b"mg Zm9v b v k\r\n", b"EN kZm9v b\r\n"),
    ("mg_stale_after_md_invalidate", b"ms a 1\r\nx\r\nmd a I T30\r\nmg a v\r\nmg a v\r\n",
     b"HD\r\nHD\r\nVA 1 X W\r\nx\r\nVA 1 Z X\r\nx\r\n"),
    ("ms_invalidate_older_cas",
     b"ms a 1\r\nw\r\nms a 1 T100\r\nx\r\nms a 1 I C1\r\ny\r\nmg a v\r\nmg a v\r\n",
     b"HD\r\nHD\r\nHD\r\nVA 1 X W\r\ny\r\nVA 1 Z X\r\ny\r\n"),
    ("ms_invalidate_zero_cas", b"ms a 1\r\nx\r\nms a 1 I C0\r\ny\r\n", b"HD\r\nEX\r\n"),
    ("md_invalidate_keeps_item",
     b"ms a 1 F3\r\nx\r\nmg a v\r\nmd a I T30\r\nmg a v f h\r\nmg a v\r\n",
     b"HD\r\nVA 1\r\nx\r\nHD\r\nVA 1 f3 h1 X W\r\nx\r\nVA 1 Z X\r\nx\r\n"),
    # md
    ("md", b"ms a 1\r\nx\r\nmd a\r\nmd a\r\nmg a\r\n", b"HD\r\nHD\r\nNF\r\nEN\r\n"),
    ("md_quiet", b"ms a 1\r\nx\r\nmd a q\r\nmd a q\r\n", b"HD\r\nNF\r\n"),
    ("md_opaque_key", b"md a O5 k\r\n", b"NF O5 ka\r\n"),
    ("md_cas", b"ms a 1\r\nx\r\nmd a C99999999\r\nmg a\r\n", b"HD\r\nEX\r\nHD\r\n"),
    ("md_bad_flag", b"md a Z\r\nmd a Cx\r\n", b"CLIENT_ERROR invalid or duplicate flag\r\n" * 2),
    ("md_no_key", b"md\r\n", b"ERROR\r\n"),
    ("md_key_too_long", b"md " + b"k" * 251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    # ma
    ("ma_missing", b"ma n\r\n", b"NF\r\n"),
    ("ma_incr", b"ms n 1\r\n5\r\nma n\r\nma n v\r\nma n D10 v\r\n", b"HD\r\nHD\r\nVA 1\r\n7\r\nVA 2\r\n17\r\n"),
    ("ma_decr", b"ms n 2\r\n10\r\nma n MD v\r\nma n M- D100 v\r\nmg n v\r\n",
     b"HD\r\nVA 1\r\n9\r\nVA 1\r\n0\r\nVA 2\r\n0 \r\n"),
    ("ma_vivify", b"ma n N0 J13 v\r\nma n v\r\n", b"VA 2\r\n13\r\nVA 2\r\n14\r\n"),
    ("ma_ttl", b"ma n N0 J1 t v\r\nma n T100 v\r\n", b"VA 1 t-1\r\n1\r\nVA 1\r\n2\r\n"),
    ("ma_quiet", b"ms n 1\r\n5\r\nma n q\r\nma n q v\r\nma x q\r\nmg n v\r\n",
     b"HD\r\nNF\r\nVA 1\r\n7\r\n"),
    ("ma_opaque_key", b"ma n O9 k\r\nms n 1\r\n1\r\nma n O9 k\r\n", b"NF O9 kn\r\nHD\r\nHD O9 kn\r\n"),
    ("ma_cas_mismatch", b"ms n 1\r\n1\r\nma n C99999999\r\n", b"HD\r\nEX\r\n"),
    ("ma_non_numeric", b"ms n 1\r\nx\r\nma n\r\n",
     b"HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    ("ma_bad_mode", b"ma n MX\r\n", b"CLIENT_ERROR invalid mode for ma M token\r\n"),
    ("ma_bad_delta", b"ma n Dx\r\n", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
    ("ma_no_key", b"ma\r\n", b"ERROR\r\n"),
    # me
    ("me_miss", b"me a\r\n", b"EN\r\n"),
    ("me_hit", b"ms a 1\r\nx\r\nme a\r\n",
     b"HD\r\nME a exp=-1 la=0 cas=<cas> fetch=no cls=1 size=61\r\n"),
    ("me_fetched", b"ms abc 100\r\n" + b"v" * 100 + b"\r\nmg abc\r\nme abc\r\n",
     b"HD\r\nHD\r\nME abc exp=-1 la=0 cas=<cas> fetch=yes cls=4 size=162\r\n"),
    ("me_no_key", b"me\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ("unknown_meta", b"mz a\r\n", b"ERROR\r\n"),
]


def _norm(reply: bytes) -> bytes:
    return re.sub(rb"cas=\d+", b"cas=<cas>", reply)


@pytest.mark.parametrize("send,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conversation(conn, send, want):
    got = _norm(conn.call(send))
    assert got == want, f"got {got[:300]!r}\nwant {want[:300]!r}"


def test_ms_returns_cas_and_mg_agrees(conn):
    reply = conn.call(b"ms a 1 c\r\nx\r\n")
    m = re.fullmatch(rb"HD c(\d+)\r\n", reply)
    assert m, reply
    cas = m.group(1)
    conn.expect(b"mg a c\r\n", b"HD c" + cas + b"\r\n")
    conn.expect(b"ms a 1 C" + cas + b"\r\ny\r\n", b"HD\r\n")
    conn.expect(b"ms a 1 C" + cas + b"\r\nz\r\n", b"EX\r\n")
    conn.expect(b"mg a v\r\n", b"VA 1\r\ny\r\n")


def test_md_with_matching_cas(conn):
    cas = re.fullmatch(rb"HD c(\d+)\r\n", conn.call(b"ms a 1 c\r\nx\r\n")).group(1)
    conn.expect(b"md a C" + cas + b"\r\n", b"HD\r\n")
    conn.expect(b"mg a\r\n", b"EN\r\n")


def test_ma_returns_new_cas(conn):
    cas1 = re.fullmatch(rb"HD c(\d+)\r\n", conn.call(b"ms n 1 c\r\n1\r\n")).group(1)
    reply = conn.call(b"ma n C" + cas1 + b" c v\r\n")
    m = re.fullmatch(rb"VA 1 c(\d+)\r\n2\r\n", reply)
    assert m and m.group(1) != cas1, reply


def test_binary_key_round_trip(conn):
    key = bytes(range(1, 40))
    enc = base64.b64encode(key)
    conn.expect(b"ms " + enc + b" 2 b\r\nhi\r\n", b"HD\r\n")
    conn.expect(b"mg " + enc + b" b v k\r\n", b"VA 2 k" + enc + b" b\r\nhi\r\n")
    conn.expect(b"md " + enc + b" b\r\n", b"HD\r\n")


def test_md_invalidate_gives_a_new_cas(conn):
    cas1 = re.fullmatch(rb"HD c(\d+)\r\n", conn.call(b"ms a 1 c\r\nx\r\n")).group(1)
    conn.expect(b"md a I\r\n", b"HD\r\n")
    cas2 = re.fullmatch(rb"HD c(\d+) X W\r\n", conn.call(b"mg a c\r\n")).group(1)
    assert cas2 != cas1
