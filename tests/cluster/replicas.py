"""What the replication tests need beside the fleet: a key's owners as the cluster names them,
and a node's own copy of a key, read over a proven peer connection (never routed, never
merged with the other owners')."""
from __future__ import annotations

import re
from typing import Self

from helpers.wire import Conn

from pycache_cluster.cluster.handshake import Handshake
from pycache_cluster.gossip import Keyring


def owners(fleet, key: bytes, via: int = 0) -> list[int]:
    """Indices in `fleet` of the key's owners, in preference order."""
    reply = fleet[via].call(b"cluster owners " + key + b"\r\n")
    names = [m.decode() for m in re.findall(rb"OWNER (\S+)", reply)]
    index = {node.name: i for i, node in enumerate(fleet.nodes)}
    return [index[n] for n in names]


class PeerView:
    """A connection that has proven it holds the cluster key: a node answers it from its own
    store alone. `copy(key)` is (value, version) or None."""

    def __init__(self, fleet, i: int):
        node = fleet[i]
        self.conn = Conn(node.port, host=node.host, timeout=5)
        hs = Handshake("inspector", Keyring.from_file(str(fleet.key_file)))
        hello, session = hs.hello(node.name)
        answer = hs.on_line(session, self.conn.call(hello))
        assert hs.on_line(session, self.conn.call(answer)) is True

    def copy(self, key: bytes) -> tuple[bytes, int] | None:
        # E1: a replica's read, answered from this node's store whatever the ring says.
        reply = self.conn.call(b"mg %s v c E1\r\n" % key)
        if reply.startswith(b"EN") or reply == b"SERVER_ERROR no copy yet\r\n":
            return None         # (the second: it holds nothing, and may be getting it)
        m = re.match(rb"VA (\d+) c(\d+)\r\n", reply)
        assert m, reply
        start = m.end()
        return reply[start:start + int(m.group(1))], int(m.group(2))

    def write(self, request: bytes) -> bytes:
        """A replica's write as a peer sends it (ms/md with E<version>)."""
        return self.conn.call(request)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def copies(fleet, key: bytes, nodes) -> list[tuple[bytes, int] | None]:
    out = []
    for i in nodes:
        with PeerView(fleet, i) as view:
            out.append(view.copy(key))
    return out
