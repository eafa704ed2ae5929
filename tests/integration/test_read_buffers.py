"""Connections' read buffers: taken for a read, given back when the batch leaves nothing
behind, grown only as far as a value in flight needs and shrunk afterwards; memcached's
read_buf_* stats say what they hold."""
import re

from helpers.servers import start_node
from helpers.wire import Conn


def buf_stats(port):
    with Conn(port) as c:
        out = c.call(b"stats\r\n")
    return {k.decode(): int(v) for k, v in re.findall(rb"STAT (read_buf_\w+) (\d+)", out)}


def test_idle_connections_hold_no_read_buffer(request):
    node = start_node()
    request.addfinalizer(node.stop)
    conns = [Conn(node.port) for _ in range(200)]
    for c in conns:
        c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
    st = buf_stats(node.port)
    # Every buffer is a spare (at most 64 of 16 KiB are kept) but the one reading `stats`:
    # the idle 200 hold none.
    assert st["read_buf_bytes"] - st["read_buf_bytes_free"] == 16384
    assert st["read_buf_bytes_free"] <= 64 * 16384
    assert st["read_buf_count"] * 16384 == st["read_buf_bytes"]
    assert st["read_buf_oom"] == 0
    for c in conns:
        c.close()


def test_a_large_value_grows_one_buffer_only_while_it_is_read(request):
    node = start_node()
    request.addfinalizer(node.stop)
    value = b"x" * 900_000
    with Conn(node.port) as c:
        # Half the value: the buffer has grown to hold it whole, in 16 KiB steps.
        c.send(b"set big 0 0 %d\r\n" % len(value) + value[:450_000])
        grown = None
        for _ in range(200):
            st = buf_stats(node.port)
            in_use = st["read_buf_bytes"] - st["read_buf_bytes_free"] - 16384
            if in_use >= len(value):
                grown = in_use
                break
        assert grown is not None and grown < len(value) + 2 * 16384
        c.send(value[450_000:] + b"\r\n")
        assert c.call(b"") == b"STORED\r\n"
    st = buf_stats(node.port)
    assert st["read_buf_bytes"] - st["read_buf_bytes_free"] == 16384
