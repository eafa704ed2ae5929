"""A node filled far past -m: it evicts the oldest items and stays within its limit."""
import re

import pytest
from helpers.servers import start_node
from helpers.wire import Conn


@pytest.fixture(scope="module")
def tiny_node(request):
    node = start_node("-m", "2")
    request.addfinalizer(node.stop)
    return node


def _stats(conn):
    return {k.decode(): int(v) for k, v in
            re.findall(rb"STAT (\S+) (\d+)\r\n", conn.call(b"stats\r\n"))}


def test_filling_far_past_the_limit_evicts_and_stays_within_it(tiny_node):
    value = b"v" * 1000
    with Conn(tiny_node.port) as c:
        batch = b"".join(b"set key:%d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value)
                         for i in range(10_000))
        c.call(batch)
        stats = _stats(c)
        assert stats["evictions"] > 7000
        assert stats["bytes"] + stats["hash_bytes"] <= stats["limit_maxbytes"] == 2 << 20
        assert c.call(b"get key:9999\r\n") == b"VALUE key:9999 0 1000\r\n%s\r\nEND\r\n" % value
        assert c.call(b"get key:0\r\n") == b"END\r\n"
