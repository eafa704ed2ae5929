"""Connections' read buffers: taken for a read, given back when the batch leaves nothing
behind, grown only as far as a value in flight needs and shrunk afterwards; memcached's
read_buf_* stats say what they hold."""
import re
import time

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


def test_a_large_value_does_not_grow_the_read_buffer(request):
    """A value of 16 KiB or more is read into its item (tests/integration/test_large_values.py):
    while it is in flight its sender holds no read buffer at all."""
    node = start_node()
    request.addfinalizer(node.stop)
    value = b"x" * 900_000
    with Conn(node.port) as c:
        c.send(b"set big 0 0 %d\r\n" % len(value) + value[:450_000])
        time.sleep(0.2)
        st = buf_stats(node.port)
        assert st["read_buf_bytes"] - st["read_buf_bytes_free"] == 16384   # the stats reader's
        c.send(value[450_000:] + b"\r\n")
        assert c.call(b"") == b"STORED\r\n"
    st = buf_stats(node.port)
    assert st["read_buf_bytes"] - st["read_buf_bytes_free"] == 16384


def test_a_long_command_line_grows_one_buffer_only_while_it_is_read(request):
    node = start_node()
    request.addfinalizer(node.stop)
    line = b"get " + b" ".join(b"key%06d" % i for i in range(20_000)) + b"\r\n"
    with Conn(node.port) as c:
        # Half the line: the buffer has grown to hold it, in 16 KiB steps, not doubled.
        c.send(line[:len(line) // 2])
        grown = None
        for _ in range(200):
            st = buf_stats(node.port)
            in_use = st["read_buf_bytes"] - st["read_buf_bytes_free"] - 16384
            if in_use >= len(line) // 2:
                grown = in_use
                break
            time.sleep(0.01)
        assert grown is not None and grown < len(line) // 2 + 2 * 16384
        c.send(line[len(line) // 2:])
        assert c.call(b"") == b"END\r\n"
    st = buf_stats(node.port)
    assert st["read_buf_bytes"] - st["read_buf_bytes_free"] == 16384
