"""The node's request path without sockets: tokenize, dispatch, store, format, one write.

A Connection is fed a buffer of 100 pipelined requests through asyncio's BufferedProtocol calls
(get_buffer, buffer_updated) and writes its replies to an in-memory transport, so each figure
is the server's user-space cost per batch of 100 with no syscalls. Run with `make bench-micro`;
divide by 100 for the cost per request beside `python -m bench compare`'s user CPU µs/op.
"""
import pytest

pytest.importorskip("pycache_cluster.protocol")

from pycache_cluster.config import Config
from pycache_cluster.protocol import ServerState
from pycache_cluster.store import Store

BATCH = 100
KEYS = 10_000
VALUE = b"v" * 100


class NullTransport:
    """Just enough of an asyncio transport: keeps the byte count of what was written."""

    def __init__(self):
        self.written = 0

    def write(self, data):
        self.written += len(data)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 0) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def is_closing(self):
        return False

    def close(self):
        pass

    def abort(self):
        pass


def key(i):
    return b"key:%010d" % i


@pytest.fixture(scope="module")
def server():
    store = Store(64 << 20, 1 << 20)
    for i in range(KEYS):
        store.set(key(i), VALUE)
    return ServerState(store, Config())


def feeder(server, payload, expect_reply=True):
    conn = server.protocol_factory()
    transport = NullTransport()
    conn.connection_made(transport)
    n = len(payload)

    def feed():
        buf = memoryview(conn.get_buffer(n))
        buf[:n] = payload
        conn.buffer_updated(n)

    feed()
    assert (transport.written > 0) == expect_reply, transport.written
    return feed


def batch(make):
    return b"".join(make((i * 7919) % KEYS) for i in range(BATCH))


PAYLOADS = {
    "get-hit": batch(lambda i: b"get %s\r\n" % key(i)),
    "get-miss": batch(lambda i: b"get miss:%010d\r\n" % i),
    "multiget10": b"".join(b"get " + b" ".join(key((j * 10 + i) % KEYS) for i in range(10))
                           + b"\r\n" for j in range(BATCH // 10)),
    "set-100B": batch(lambda i: b"set %s 0 0 100\r\n%s\r\n" % (key(i), VALUE)),
    "set-noreply": batch(lambda i: b"set %s 0 0 100 noreply\r\n%s\r\n" % (key(i), VALUE)),
    "mg-v": batch(lambda i: b"mg %s v\r\n" % key(i)),
    "mg-flags": batch(lambda i: b"mg %s s v f t c k\r\n" % key(i)),
    "ms": batch(lambda i: b"ms %s 100\r\n%s\r\n" % (key(i), VALUE)),
    "mixed90-10": b"".join(
        (b"ms %s 100\r\n%s\r\n" % (key(i), VALUE)) if i % 10 == 0 else b"mg %s v\r\n" % key(i)
        for i in range(BATCH)),
}


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_batch_of_100(benchmark, server, name):
    benchmark.group = "protocol: one buffer of 100 pipelined requests"
    benchmark(feeder(server, PAYLOADS[name], expect_reply="noreply" not in name))
