"""The node under abuse: random and mutated protocol bytes, slow readers, half-closed and
reset sockets, 1000 concurrent connections. It must keep answering and leak nothing."""
import re
import socket
import struct

import pytest
from helpers.servers import raise_nofile, start_node
from helpers.wire import Conn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = [
    b"set a 0 0 1\r\nx\r\n", b"get a b\r\n", b"gets a\r\n", b"gat 10 a\r\n", b"delete a\r\n",
    b"incr n 1\r\n", b"decr n 1\r\n", b"touch a 10\r\n", b"cas a 0 0 1 1\r\ny\r\n",
    b"append a 0 0 1\r\nz\r\n", b"mg a v k c t s f h l O1\r\n", b"ms a 2 T10 F1 c k\r\nhi\r\n",
    b"md a q\r\n", b"ma n N0 J1 v\r\n", b"mn\r\n", b"me a\r\n", b"flush_all\r\n",
    b"version\r\n", b"stats\r\n", b"stats items\r\n", b"stats slabs\r\n", b"stats settings\r\n",
    b"stats conns\r\n", b"verbosity 1\r\n", b"set n 0 0 2\r\n10\r\n",
]


@st.composite
def mutated(draw):
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=8))))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == 0:
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i]
        elif op == 2:
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[i:i] = draw(st.sampled_from([b" ", b"\r\n", b"\n", b"\x00", b"-1", b"99999999999",
                                              b"noreply", b" b", b"k" * 300]))
    return bytes(data)


FUZZ = st.one_of(st.binary(max_size=300), mutated(), mutated())


@pytest.fixture(scope="module")
def node(request):
    raise_nofile(4096)
    n = start_node("-c", "2000")
    request.addfinalizer(n.stop)
    return n


def _stats(port):
    with Conn(port) as c:
        return dict(re.findall(rb"STAT (\S+) (\S+)\r\n", c.call(b"stats\r\n")))


def _wait_connections(port, want):
    """curr_connections as seen from one fresh connection, once the node has seen the others
    close (closing is asynchronous); gives the last value seen after many probes."""
    got = None
    for _ in range(500):
        got = int(_stats(port)[b"curr_connections"])
        if got == want:
            break
    return got


def _version_ok(port):
    with Conn(port) as c:
        c.send(b"version\r\n")
        return c.read_until(b"\r\n") == b"VERSION 1.6.18\r\n"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=FUZZ, how=st.sampled_from(["close", "half", "reset"]))
def test_fuzz_keeps_answering(node, data, how):
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    try:
        s.sendall(data)
        if how == "half":
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        elif how == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    assert node.alive()
    assert _version_ok(node.port)


def test_no_connection_leaks_after_fuzz(node):
    # Runs after the fuzzing in this module: only our probe connection is left.
    assert _wait_connections(node.port, 1) == 1
    assert node.alive()


def test_half_closed_client_gets_its_replies(node):
    with Conn(node.port) as c:
        c.send(b"set h 0 0 2\r\nhi\r\nget h\r\n")
        assert c.half_close() == b"STORED\r\nVALUE h 0 2\r\nhi\r\nEND\r\n"


def test_disconnect_mid_value(node):
    s = socket.create_connection(("127.0.0.1", node.port))
    s.sendall(b"set mid 0 0 100000\r\n" + b"x" * 5000)
    s.close()
    with Conn(node.port) as c:
        c.expect(b"get mid\r\n", b"END\r\n")


def test_slow_reader_is_paused_and_others_are_served(node):
    value = b"v" * 500_000
    with Conn(node.port) as setup:
        setup.expect(b"set slow 0 0 %d\r\n%s\r\n" % (len(value), value), b"STORED\r\n")
    slow = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    n_requests = 100       # 50 MB of replies it does not read for a while
    request = b"get slow\r\n" * n_requests
    slow.setblocking(False)
    sent = 0
    while sent < len(request):
        try:
            sent += slow.send(request[sent:])
        except BlockingIOError:
            break          # the node stopped reading us: backpressure
    try:
        _slow_reader_rest(node, slow, value, request, sent, n_requests)
    finally:
        slow.close()


def _slow_reader_rest(node, slow, value, request, sent, n_requests):
    # Meanwhile another client is served normally.
    with Conn(node.port) as other:
        other.expect(b"set o 0 0 1\r\nx\r\nget o\r\n", b"STORED\r\nVALUE o 0 1\r\nx\r\nEND\r\n")
    # The slow reader then reads everything, and every reply is whole and in order.
    slow.setblocking(True)
    one = b"VALUE slow 0 %d\r\n%s\r\nEND\r\n" % (len(value), value)
    want = one * n_requests
    got = bytearray()
    while len(got) < len(want):
        if sent < len(request):
            slow.setblocking(False)
            try:
                sent += slow.send(request[sent:])
            except BlockingIOError:
                pass
            slow.setblocking(True)
        chunk = slow.recv(1 << 20)
        assert chunk, "connection closed early"
        got += chunk
        # Compare as we go, so a mismatch shows early and memory stays small.
        if len(got) > 4 * len(one):
            k = (len(got) // len(one) - 1) * len(one)
            assert got[:k] == one * (k // len(one))
            del got[:k]
            want = want[k:]
    assert bytes(got) == want


def test_thousand_concurrent_connections(node):
    if raise_nofile(4096) < 2100:
        pytest.skip("cannot raise RLIMIT_NOFILE for 1000 client sockets")
    socks = []
    try:
        for i in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", node.port), timeout=30))
        for i, s in enumerate(socks):
            s.sendall(b"set c%d 0 0 %d\r\n%d\r\nget c%d\r\n" % (i, len(str(i)), i, i))
        for i, s in enumerate(socks):
            want = b"STORED\r\nVALUE c%d 0 %d\r\n%d\r\nEND\r\n" % (i, len(str(i)), i)
            got = b""
            while len(got) < len(want):
                chunk = s.recv(4096)
                assert chunk
                got += chunk
            assert got == want
        assert int(_stats(node.port)[b"curr_connections"]) == 1001
    finally:
        for s in socks:
            s.close()
    assert _wait_connections(node.port, 1) == 1


def test_reader_that_never_reads_does_not_grow_the_node(node):
    psutil = pytest.importorskip("psutil", reason="psutil not installed (pip install -e .[test])")
    value = b"w" * 1_000_000
    with Conn(node.port) as setup:
        setup.expect(b"set huge 0 0 %d\r\n%s\r\n" % (len(value), value), b"STORED\r\n")
    proc = psutil.Process(node.pid)
    rss_before = proc.memory_info().rss
    s = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    try:
        # 64 kB of requests asks for 6.5 GB of replies; the client reads none of it.
        s.setblocking(False)
        request = b"get huge\r\n" * 6500
        sent = 0
        while sent < len(request):
            try:
                sent += s.send(request[sent:])
            except BlockingIOError:
                break
        # The node answers another client meanwhile, so it has handled what it could read.
        with Conn(node.port) as other:
            other.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
        grown = proc.memory_info().rss - rss_before
        assert grown < 200 * 1024 * 1024, f"node grew by {grown} bytes"
        # What does arrive is whole and in order.
        s.setblocking(True)
        one = b"VALUE huge 0 %d\r\n%s\r\nEND\r\n" % (len(value), value)
        got = b""
        while len(got) < 3 * len(one):
            got += s.recv(1 << 20)
        assert got[: 3 * len(one)] == one * 3
    finally:
        s.close()
    assert _version_ok(node.port)
