"""Fuzzing the binary parser. Generated frame sequences, well formed and lying (lengths off
by a little, unknown opcodes, wrong extras), go to our node and to memcached 1.6.18: the same
frames must come back. Random and mutated bytes go to our node alone: it must never crash,
and another connection is answered afterwards."""
import os
import struct

from helpers.binary import NOOP, VERSION, exchange, normalise, req
from helpers.wire import Conn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("PYCACHE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

KEY = st.sampled_from([b"a", b"b", b"n", b"k" * 250, b"k" * 251, b"x y\r\n"])
# Not time-dependent: never, already past (absolute), far future.
EXPTIME = st.sampled_from([0, 1000000000, 0xFFFFFFFF])
VALUE = st.sampled_from([b"", b"v", b"10", b"18446744073709551615", b"abc" * 5])
# Every opcode but stat (whose numbers differ between servers; its framing is tested apart).
OPCODE = st.integers(0, 0x40).filter(lambda op: op != 0x10)
CAS = st.sampled_from([0, 0, 0, 1, 12345])


@st.composite
def frame(draw):
    op = draw(OPCODE)
    key = draw(KEY)
    shape = draw(st.integers(0, 5))
    if shape == 0:
        extras = struct.pack(">II", draw(st.sampled_from([0, 1, 0xFFFFFFFF])), draw(EXPTIME))
    elif shape == 1:
        extras = struct.pack(">QQI", draw(st.sampled_from([0, 1, 2**64 - 1])),
                             draw(st.sampled_from([0, 5])), draw(EXPTIME))
    elif shape == 2:
        extras = struct.pack(">I", draw(EXPTIME))
    else:
        extras = b""
    if draw(st.integers(0, 3)) == 0:
        key = b""
    value = draw(VALUE) if draw(st.booleans()) else b""
    body = len(extras) + len(key) + len(value)
    lie = draw(st.sampled_from([0] * 12 + [-3, -1, 1, 4, 24]))
    bodylen = max(0, body + lie)
    data = req(op, key, extras, value, opaque=draw(st.integers(0, 3)), cas=draw(CAS),
               bodylen=bodylen)
    if lie > 0:
        data += b"\0" * lie if draw(st.booleans()) else req(NOOP)[:lie]
    return data


SEQUENCE = st.lists(frame(), min_size=1, max_size=10).map(b"".join)


@FUZZ
@given(data=SEQUENCE)
def test_frames_like_memcached(pycache, memcached, data):
    flush = req(0x08)
    ours = normalise(exchange(pycache.port, flush + data + req(NOOP, opaque=99)))
    theirs = normalise(exchange(memcached.port, flush + data + req(NOOP, opaque=99)))
    assert ours == theirs


def _mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for at, value in flips:
        if b:
            b[at % len(b)] = value
    return bytes(b)


@FUZZ
@given(base=SEQUENCE, flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                     max_size=6),
       noise=st.binary(max_size=64), cut=st.integers(0, 400))
def test_bad_input_never_stops_the_node(pycache, base, flips, noise, cut):
    junk = _mutate(b"\x80" + base[1:], flips) + noise
    exchange(pycache.port, junk[:len(junk) - cut % (len(junk) + 1)])
    with Conn(pycache.port, timeout=5) as c:
        c.send(req(VERSION, opaque=1))
        assert c.read_exact(30) == normalise_version()


def normalise_version() -> bytes:
    return b"\x81\x0b\0\0\0\0\0\0\0\0\0\x06" + struct.pack(">I", 1) + b"\0" * 8 + b"1.6.18"


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(min_size=24, max_size=24), tail=st.binary(max_size=200))
def test_random_headers(pycache, header, tail):
    exchange(pycache.port, b"\x80" + header[1:] + tail)
    with Conn(pycache.port, timeout=5) as c:
        c.send(req(VERSION, opaque=1))
        assert c.read_exact(30) == normalise_version()
