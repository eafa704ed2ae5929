"""The node's lifecycle and seams in-process: start/stop on uvloop, an extension command
handled in Python, housekeeping (clock and expiry crawler) running on the loop."""
import asyncio

import pytest

uvloop = pytest.importorskip("uvloop")

from pycache_cluster.config import Config
from pycache_cluster.node import Node


async def _talk(port, data, until=b"MN\r\n"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data + b"mn\r\n")
    out = await reader.readuntil(until)
    writer.close()
    await writer.wait_closed()
    return out[: -len(until)]


def test_start_stop_and_extension_command():
    async def main():
        node = Node(Config(port=0))
        seen = []

        def cluster(conn, args):
            seen.append(args)
            return b"CLUSTER " + b" ".join(args[1:]) + b"\r\n"

        node.state.extensions.add_command(b"cluster", cluster)
        await node.start()
        try:
            port = node.config.port
            assert await _talk(port, b"cluster members\r\n") == b"CLUSTER members\r\n"
            assert seen == [[b"cluster", b"members"]]
            # Unregistered commands are still memcached's ERROR.
            assert await _talk(port, b"lock x\r\nbogus\r\n") == b"ERROR\r\nERROR\r\n"
            assert await _talk(port, b"set a 0 0 1\r\nx\r\nget a\r\n") == \
                b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
        finally:
            await node.stop()
        # Stopped: the port no longer accepts.
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    uvloop.run(main())


def test_crawler_reclaims_expired_items_on_the_loop():
    async def main():
        node = Node(Config(port=0, crawl_interval=0.001, crawl_buckets=1 << 16))
        await node.start()
        try:
            port = node.config.port
            # Absolute times in the past are already expired; only the crawler frees them.
            for i in range(50):
                await _talk(port, b"set k%d 0 1000000000 1\r\nx\r\n" % i)
            for _ in range(2000):
                if node.store.stats()["crawler_reclaimed"] >= 50:
                    break
                await asyncio.sleep(0.001)
            st = node.store.stats()
            assert st["crawler_reclaimed"] >= 50 and st["curr_items"] == 0
        finally:
            await node.stop()

    uvloop.run(main())


def test_store_clock_follows_wall_clock():
    async def main():
        node = Node(Config(port=0))
        node.store.set_time(1_000_000_000)       # far in the past
        await node.start()
        try:
            for _ in range(2000):
                if node.store.now > 1_000_000_000:
                    break
                await asyncio.sleep(0.001)
            assert node.store.now > 1_700_000_000
        finally:
            await node.stop()

    uvloop.run(main())


def test_without_gossip_port_no_membership():
    node = Node(Config(port=0))
    assert [type(c).__name__ for c in node.components] == \
        ["Housekeeping", "Watches", "ProtocolServer", "Locks"]
    # Only the node's own `stats memory` (locks are not started yet): nothing of the cluster.
    assert node.state.extensions.names() == ([], [b"memory"])


def test_gossip_members_active_and_a_stopped_node_is_left():
    from pycache_cluster.gossip import State, Status

    def gossip_config(name, join=""):
        return Config(port=0, gossip_port=0, node_name=name, join=join, gossip_preset="local")

    async def main():
        a = Node(gossip_config("a"))
        await a.start()
        ml_a = a.components[-2].membership.memberlist
        b = Node(gossip_config("b", join=f"127.0.0.1:{ml_a.config.bind_port}"))
        # Membership last: started once the node serves, stopped (leave announced) first.
        assert [type(c).__name__ for c in b.components] == \
            ["Housekeeping", "Watches", "ProtocolServer", "Cluster", "Locks"]
        await b.start()
        try:
            for _ in range(300):
                seen = ml_a.member("b")
                if seen is not None and seen.state == State.ALIVE:
                    break
                await asyncio.sleep(0.01)
            assert seen.meta.status == Status.ACTIVE
            assert seen.meta.client_port == b.config.port
            assert b.state.extensions.names() == \
                ([b"cluster", b"lock", b"watch"], [b"cluster", b"gossip", b"locks", b"memory"])
            await b.stop()
            assert b.state.extensions.names() == ([], [b"memory"])
            for _ in range(300):
                if ml_a.member("b").state == State.LEFT:
                    break
                await asyncio.sleep(0.01)
            assert ml_a.member("b").state == State.LEFT
        finally:
            await b.stop()
            await a.stop()

    uvloop.run(main())
