"""Closing a client, and giving up on its requests, against a real node: requests nobody
cancelled never see CancelledError, a cancel of whoever closes is kept, a closed client stays
closed, a connection with replies still owed is dropped within the client's timeout, and a
request cancelled while its node connects leaves nothing behind."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest
from helpers.servers import start_node

from pycache_cluster.client import AsyncClient, Client, ClusterUnavailable
from pycache_cluster.client.errors import NodeUnreachable
from pycache_cluster.client.topology import RingReplyError, Topology, parse_ring


@pytest.fixture
def node(request):
    server = start_node()
    request.addfinalizer(server.stop)
    return server


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_request_connecting_as_the_client_closes_is_told_so_not_cancelled(node):
    async def scenario():
        client = AsyncClient([f"127.0.0.1:{node.port}"])
        await client.start()                 # the ring is read on a connection of its own
        get = asyncio.create_task(client.get(b"k"))
        await asyncio.sleep(0)               # the get waits for its node's first connection
        await client.close()
        with pytest.raises((ClusterUnavailable, NodeUnreachable)):
            await get
        assert not get.cancelled()

    run(scenario())


def test_a_cancel_of_whoever_closes_is_kept(node):
    async def scenario():
        client = AsyncClient([f"127.0.0.1:{node.port}"])
        await client.start()
        watch = await client.watch(b"k")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):   # expired at once: the close is cancelled
                await watch.close()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await client.close()
        assert client.router.closed          # and the client is closed all the same

    run(scenario())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_closed_client_says_so_and_stays_closed(node, kind):
    seeds = [f"127.0.0.1:{node.port}"]
    if kind == "sync":
        client = Client(seeds)
        client.close()
        assert not client.refresh()          # a refresh installs nothing on a closed client
        with pytest.raises(ClusterUnavailable, match="closed"):
            client.get(b"k")
        assert client.router.nodes == {}
        return

    async def scenario():
        client = AsyncClient(seeds)
        await client.start()
        await client.close()
        assert not await client.refresh()
        with pytest.raises(ClusterUnavailable, match="closed"):
            await client.set(b"k", b"v")
        assert client.router.nodes == {}

    run(scenario())


def test_a_closing_connection_owed_replies_by_a_stopped_node_is_dropped(node):
    async def scenario():
        client = AsyncClient([f"127.0.0.1:{node.port}"], timeout=0.5)
        await client.start()
        assert await client.set(b"k", b"v")
        pipe = next(iter(client.router.nodes.values()))._pipes[0]
        os.kill(node.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):  # its caller gives up before the client
                    await client.get(b"k")
            await client.close()                  # the get's reply is still owed
            await asyncio.sleep(1.0)              # twice the client's timeout
            assert pipe.failure is not None and pipe.transport.is_closing()
        finally:
            os.kill(node.proc.pid, signal.SIGCONT)

    run(scenario())


def test_a_request_cancelled_while_its_node_connects_leaves_nothing_behind(node):
    async def scenario():
        client = AsyncClient([f"127.0.0.1:{node.port}"])
        await client.start()
        get = asyncio.create_task(client.get(b"k"))
        await asyncio.sleep(0)
        get.cancel()
        await asyncio.sleep(0.3)              # the connect it started completes meanwhile
        conn = next(iter(client.router.nodes.values()))
        assert conn._opening == [None]
        conn._pipes[0].fail(ConnectionResetError())   # that connection breaks
        assert await client.set(b"k", b"v")   # a new one is opened, the write sent
        await client.close()

    run(scenario())


@pytest.mark.parametrize("head", [b"vnodes=0 nodes=1", b"vnodes=5 nodes=x"])
def test_a_ring_reply_no_ring_can_have_is_a_ring_reply_error(head):
    reply = b"RING epoch=1 checksum=0 " + head + b"\r\nNODE a 127.0.0.1:1 weight=0 " \
        b"share=1\r\nEND\r\n"
    with pytest.raises(RingReplyError):
        Topology.from_info(parse_ring(reply))
