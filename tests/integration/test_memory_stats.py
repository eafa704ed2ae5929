"""`stats memory`: what the node's process really holds, beside what its items are charged."""
import asyncio
import re

import pytest
from helpers.servers import start_node
from helpers.wire import Conn


@pytest.fixture(scope="module")
def node(request):
    srv = start_node("-m", "64")
    request.addfinalizer(srv.stop)
    return srv


def _stats(conn, group=b""):
    reply = conn.call(b"stats %s\r\n" % group if group else b"stats\r\n")
    return {k.decode(): int(v) for k, v in re.findall(rb"STAT (\S+) (-?\d+)\r\n", reply)}


def test_stats_memory_reports_the_process_the_allocator_and_big_items(node):
    with Conn(node.port) as c:
        st = _stats(c, b"memory")
    for name in ("process_rss", "process_anonymous", "process_peak_rss", "malloc_heap_bytes",
                 "malloc_heap_free", "malloc_mmap_bytes", "large_items", "large_item_bytes",
                 "large_cache_bytes", "large_cache_max", "python_allocated_blocks"):
        assert name in st, name
    assert 0 < st["process_rss"] <= st["process_peak_rss"]
    assert st["large_cache_bytes"] <= st["large_cache_max"]


def test_big_items_stored_deleted_and_expired_are_counted_once():
    # Items are stored and deleted by the protocol's extension and reclaimed by the expiry
    # crawler from the store's, each linking its own copy of the core: all must count in the
    # one process-wide tally (in process, so that the crawler can be made to run at once).
    uvloop = pytest.importorskip("uvloop")
    from pycache_cluster.config import Config
    from pycache_cluster.node import Node
    from pycache_cluster.store import large_stats

    async def talk(port, data):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data + b"mn\r\n")
        out = await reader.readuntil(b"MN\r\n")
        writer.close()
        await writer.wait_closed()
        return out[:-4]

    async def main():
        node = Node(Config(port=0, crawl_interval=0.001, crawl_buckets=1 << 16))
        await node.start()
        try:
            port, value = node.config.port, b"b" * 200_000
            start = large_stats()["large_items"]
            for i in range(6):
                # Absolute times in the past are already expired; only the crawler frees them.
                exptime = 1_000_000_000 if i < 2 else 0
                assert await talk(port, b"set big:%d 0 %d %d\r\n%s\r\n"
                                  % (i, exptime, len(value), value)) == b"STORED\r\n"
            assert await talk(port, b"delete big:5\r\n") == b"DELETED\r\n"
            for _ in range(2000):
                if node.store.stats()["crawler_reclaimed"] >= 2:
                    break
                await asyncio.sleep(0.005)
            assert node.store.stats()["curr_items"] == 3
            assert large_stats()["large_items"] == start + 3
        finally:
            await node.stop()

    uvloop.run(main())
