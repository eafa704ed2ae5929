"""Peer links by member: opens them when first used, runs their handshake, reopens them after
a failure, closes them when the member leaves the ring.

Each ring member other than this node gets a Peer holding `links_per_peer` PeerLinks (the
native pipelined connections of cluster/_link.pyx; with more than one, a LinkGroup spreads
keys over them by hash). A link connects on its first request; while it connects and
handshakes, requests queue in it, and its timeout covers that wait too.
"""
from __future__ import annotations

import asyncio
import logging

from pycache_cluster.cluster._link import LinkGroup, PeerLink
from pycache_cluster.cluster.handshake import Handshake

log = logging.getLogger(__name__)


class Peer:
    """The links to one member at one client address (the PeerLinks' owner)."""

    def __init__(self, name: str, host: str, port: int, handshake: Handshake,
                 timeout: float, nlinks: int, ssl=None):
        self.name, self.host, self.port = name, host, port
        self.ssl = ssl      # the client side of TLS when members serve it (ops/tls.py)
        self.handshake_ = handshake
        loop = asyncio.get_running_loop()
        self.links = [PeerLink(name, self, loop, timeout) for _ in range(nlinks)]
        self.link = self.links[0] if nlinks == 1 else LinkGroup(self.links)
        self._connecting: dict[PeerLink, asyncio.Task] = {}
        self.closed = False

    # -- PeerLink's owner interface ----------------------------------------------------------

    def connect(self, link: PeerLink) -> None:
        if self.closed:
            link.connect_failed("closed")
            return
        self._connecting[link] = asyncio.ensure_future(self._connect(link))

    async def _connect(self, link: PeerLink) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(link.timeout):
                await loop.create_connection(lambda: link, self.host, self.port, ssl=self.ssl)
        except asyncio.CancelledError:
            raise
        except (TimeoutError, OSError, OverflowError, ValueError) as exc:   # or a bad address
            log.debug("peer %s at %s:%d: %s", self.name, self.host, self.port, exc)
            link.connect_failed(str(exc))
        finally:
            self._connecting.pop(link, None)

    def hello(self, link: PeerLink) -> bytes:
        line, link.session = self.handshake_.hello(self.name)
        return line

    def handshake(self, link: PeerLink, line: bytes) -> bytes | bool:
        answer = self.handshake_.on_line(link.session, line)
        if answer is True:
            link.session = None
            log.debug("peer link to %s ready", self.name)
        return answer

    def link_down(self, link: PeerLink, why: bytes) -> None:
        task = self._connecting.pop(link, None)
        if task is not None:
            task.cancel()
        if not self.closed:
            log.info("peer link to %s down: %s", self.name, why.decode(errors="replace"))

    # -- the pool's side ---------------------------------------------------------------------

    def close(self) -> None:
        self.closed = True
        for link in self.links:
            if link.state not in ("idle", "down"):
                link.down(b"peer " + self.name.encode() + b" left the ring")
        for task in self._connecting.values():
            task.cancel()

    def counters(self) -> dict[str, int]:
        out = dict.fromkeys(("requests", "replies", "failed", "timeouts", "connects",
                             "waiting"), 0)
        for link in self.links:
            for k in out:
                out[k] += getattr(link, k)
        return out


class PeerPool:
    """Peers by member name; `link()` answers the Link a ring slot routes through."""

    def __init__(self, handshake: Handshake, timeout: float, links_per_peer: int,
                 ssl=None):
        self.handshake = handshake
        self.ssl = ssl
        self.timeout = timeout
        self.links_per_peer = links_per_peer
        self.peers: dict[str, Peer] = {}
        self.retired: dict[str, int] = {}   # counters of peers gone, kept for stats

    def link(self, name: str, host: str, port: int):
        peer = self.peers.get(name)
        if peer is not None and (peer.host, peer.port) != (host, port):
            self._drop(name)        # restarted elsewhere: a fresh address, fresh links
            peer = None
        if peer is None:
            peer = Peer(name, host, port, self.handshake, self.timeout, self.links_per_peer,
                        self.ssl)
            self.peers[name] = peer
        return peer.link

    def keep_only(self, names: set[str]) -> None:
        for name in [n for n in self.peers if n not in names]:
            self._drop(name)

    def _drop(self, name: str) -> None:
        peer = self.peers.pop(name)
        peer.close()
        for k, v in peer.counters().items():
            if k != "waiting":
                self.retired[k] = self.retired.get(k, 0) + v

    def close(self) -> None:
        for name in list(self.peers):
            self._drop(name)

    def counters(self) -> dict[str, int]:
        out = dict(self.retired)
        for peer in self.peers.values():
            for k, v in peer.counters().items():
                out[k] = out.get(k, 0) + v
        out["links_ready"] = sum(link.state == "ready" for p in self.peers.values()
                                 for link in p.links)
        return out
