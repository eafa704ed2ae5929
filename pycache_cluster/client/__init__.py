"""Cluster-aware clients: each request goes straight to the node that owns its key.

    from pycache_cluster.client import Client, AsyncClient
    with Client(["10.0.0.1:11211"]) as c:
        c.set(b"k", b"v")
        c.txn(b"k").if_value(b"v").then_set(b"w").commit()

Modules: topology (the ring, rebuilt from `cluster ring`), ring_watch (keeping it current),
router (which node serves a key), errors (what is raised, what is retried), codec (the text
protocol), txn (transactions), base (what both clients share); the threaded Client: sync
(its API), sync_dispatch (its requests), pool (pymemcache connections); the AsyncClient: aio,
aio_dispatch, aconn (pipelined connections); watches: watch_feed (events, merging), watch
(the threaded client's streams), awatch (the asyncio client's).
"""
from pycache_cluster.client.aio import AsyncClient
from pycache_cluster.client.base import MemberInfo
from pycache_cluster.client.errors import ClusterUnavailable, NodeUnreachable, PartialFailure
from pycache_cluster.client.sync import Client
from pycache_cluster.client.topology import Owner
from pycache_cluster.client.txn import Txn, TxnConflict, TxnResult
from pycache_cluster.client.watch_feed import Change, Gap

__all__ = ["AsyncClient", "Change", "Client", "ClusterUnavailable", "Gap", "MemberInfo",
           "NodeUnreachable", "Owner", "PartialFailure", "Txn", "TxnConflict", "TxnResult"]
