"""For the cluster client's tests: the asyncio client driven from plain test code, addresses
and counters of a Fleet's nodes."""
from __future__ import annotations

import asyncio
import inspect

from helpers.cluster import owned_keys
from pycache_cluster.client import AsyncClient
from pycache_cluster.client.awatch import AsyncWatch
from pycache_cluster.client.txn import Txn


class Blocking:
    """An AsyncClient (or a Txn of one) whose coroutines run to completion when called, on
    one event loop: the same test body then drives either client."""

    def __init__(self, target, loop: asyncio.AbstractEventLoop):
        self._target = target
        self._loop = loop

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                result = self._loop.run_until_complete(result)
            if isinstance(result, (Txn, AsyncClient, AsyncWatch)):
                return Blocking(result, self._loop)
            return result
        return call


def addresses(fleet, nodes=None) -> list[str]:
    return [f"{n.host}:{n.port}" for n in (nodes or fleet.nodes)]


def cluster_counters(fleet, *names: str, nodes=None) -> dict:
    """{node name: {counter: value}} from `stats cluster` and `stats` of each node."""
    out = {}
    for node in nodes or fleet.nodes:
        counters = node.stats("cluster") | node.stats("")
        out[node.name] = {n: counters[n] for n in names}
    return out


def spread(fleet, per_node: int, prefix: str) -> list[bytes]:
    """Keys owned by each node in turn (asked of the cluster)."""
    per = [owned_keys(fleet, n, per_node, prefix) for n in range(len(fleet))]
    return [k for group in zip(*per, strict=True) for k in group]
