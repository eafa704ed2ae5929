"""The node's gossip membership: runs the Memberlist, joins the seeds, and announces a
graceful leave when the node stops.

Owned by the Cluster component (cluster/component.py), which starts it once the node serves
(so a member that gossips is already serving and its metadata says status active) and stops
it first (so peers hear "left" while in-flight replies are still being sent). Membership
events go to the listener it is given; the ring listens there.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time

from pycache_cluster.config import Config
from pycache_cluster.gossip import (
    Keyring,
    Listener,
    Member,
    Memberlist,
    NetTransport,
    NodeMeta,
    State,
    Status,
    stats_reply,
)
from pycache_cluster.gossip.config import PRESETS

log = logging.getLogger(__name__)

#: Seconds a node with seeds waits for its first join before it serves. Serving before, it
#: would route by a ring of itself alone: own every key and acknowledge writes with its
#: own copy only (a restarted node, say, while its peers route by the whole ring).
FIRST_JOIN_WAIT = 5.0


class LogListener(Listener):
    """Membership events in the node's log (-v), then to the next listener."""

    def __init__(self, then: Listener | None = None):
        self.then = then or Listener()

    def on_join(self, member: Member) -> None:
        log.info("member %s joined (%s:%d, incarnation %d)", member.name, member.host,
                 member.port, member.incarnation)
        self.then.on_join(member)

    def on_leave(self, member: Member) -> None:
        log.info("member %s is %s", member.name, member.state.label)
        self.then.on_leave(member)

    def on_update(self, member: Member) -> None:
        self.then.on_update(member)


class Reconnect(Listener):
    """Serf's reconnect: members that failed (not those that left) are asked for a push-pull
    now and then. Once gossip_to_the_dead_time has passed neither side of a partition
    gossips to the other, and dead members are forgotten after dead_node_retention: without
    this, two sides that lost each other would stay two clusters after the network heals."""

    def __init__(self, then: Listener):
        self.then = then
        self.failed: dict[str, tuple[str, int, float]] = {}    # name -> (host, port, since)

    def on_join(self, member: Member) -> None:
        self.failed.pop(member.name, None)
        self.then.on_join(member)

    def on_leave(self, member: Member) -> None:
        if member.state == State.DEAD:
            self.failed[member.name] = (member.host, member.port, time.monotonic())
        else:
            self.failed.pop(member.name, None)      # left (or forgotten): never asked again
        self.then.on_leave(member)

    def on_update(self, member: Member) -> None:
        if member.state == State.ALIVE:
            self.failed.pop(member.name, None)
        self.then.on_update(member)

    async def run(self, ml: Memberlist) -> None:
        cfg = ml.config
        while True:
            await asyncio.sleep(cfg.reconnect_interval * random.uniform(0.5, 1.5))
            horizon = time.monotonic() - cfg.reconnect_timeout
            self.failed = {n: f for n, f in self.failed.items() if f[2] > horizon}
            if not self.failed:
                continue
            name, (host, port, _) = random.choice(list(self.failed.items()))
            try:
                if await ml.join([f"{host}:{port}"], retry=False):
                    log.info("gossip: reconnected with failed member %s", name)
            except (OSError, TimeoutError, ValueError) as exc:
                log.debug("gossip: reconnect to %s: %r", name, exc)


class Membership:
    """Owns the Memberlist of a node; registers `stats gossip` while it runs."""

    def __init__(self, config: Config, listener: Listener | None = None):
        self.config = config
        self.reconnect = Reconnect(LogListener(listener))
        self.listener = self.reconnect
        # Read the key file now, so that a bad one stops the node before it listens.
        self.keyring = Keyring.from_file(config.cluster_key_file) \
            if config.cluster_key_file else None
        self.memberlist: Memberlist | None = None
        self._joiner: asyncio.Task | None = None
        self._reconnector: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.config.node_name or f"{socket.gethostname()}:{self.config.port}"

    async def start(self, node, tags: dict[str, str] | None = None) -> None:
        cfg = self.config
        bind_host, advertise_host = await _addresses(cfg.listen, cfg.advertise_addr)
        gossip = PRESETS[cfg.gossip_preset](
            name=self.name, bind_host=bind_host, bind_port=cfg.gossip_port,
            advertise_host=advertise_host, keyring=self.keyring)
        ml = Memberlist(gossip, NetTransport(gossip.bind_host, gossip.bind_port),
                        self.listener,
                        meta=NodeMeta(client_host=advertise_host or bind_host,
                                      client_port=cfg.port, status=Status.JOINING,
                                      weight=cfg.weight, tags=tags or {}))
        await ml.start()
        self.memberlist = ml
        # Peers learn this a gossip round and a ring refresh from now, by when the node,
        # whose remaining parts start without waiting on the network, listens.
        ml.update_meta(status=Status.ACTIVE)
        node.state.extensions.add_stats(b"gossip", self._stats_gossip)
        if cfg.seeds and not await self._first_join(cfg.seeds):
            self._joiner = asyncio.ensure_future(self._join(cfg.seeds))
        self._reconnector = asyncio.ensure_future(self.reconnect.run(ml))
        log.info("gossip member %s on %s:%d", ml.name, *ml.config.advertise())

    async def stop(self, node) -> None:
        node.state.extensions.remove_stats(b"gossip")
        for task in (self._joiner, self._reconnector):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        ml = self.memberlist
        if ml is None:
            return
        self.memberlist = None
        await ml.leave()        # waits at most the preset's leave_timeout
        await ml.shutdown()

    async def _first_join(self, seeds: list[str]) -> bool:
        """One join before the node serves, at most FIRST_JOIN_WAIT: True when a seed
        answered, so that the first ring holds the members. Else (no seed answered, or the
        seeds are this node alone) the retrying join goes on in the background."""
        try:
            async with asyncio.timeout(FIRST_JOIN_WAIT):
                n = await self.memberlist.join(seeds, retry=False)
        except (TimeoutError, OSError) as exc:
            log.warning("gossip: no seed answered in %.0f s (%s); serving until one does",
                        FIRST_JOIN_WAIT, exc or "timed out")
            return False
        if n:
            log.info("gossip: joined through %d seed address(es)", n)
        return n > 0

    async def _join(self, seeds: list[str]) -> None:
        # Retries with backoff until a seed answers; a node whose seeds are all down keeps
        # serving alone meanwhile (and is found by the others' join or push-pull later).
        try:
            n = await self.memberlist.join(seeds)
            log.info("gossip: joined through %d seed address(es)", n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("gossip join failed")

    def _stats_gossip(self, args: list[bytes]) -> bytes:
        return stats_reply(self.memberlist.stats())


async def _addresses(listen: str, advertise: str = "") -> tuple[str, str | None]:
    """(address to bind gossip on, address to advertise or None for the same).

    Gossip carries addresses, not names: a host name given to -l (or --advertise-addr) is
    resolved. --advertise-addr wins; else on a wildcard (-l 0.0.0.0 or ::) peers are told the
    address this machine's hostname resolves to.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(listen or "0.0.0.0", None, type=socket.SOCK_DGRAM)
    bind = infos[0][4][0]
    if advertise:
        infos = await loop.getaddrinfo(advertise, None, type=socket.SOCK_DGRAM)
        return bind, infos[0][4][0]
    if not ipaddress.ip_address(bind).is_unspecified:
        return bind, None
    hostname = socket.gethostname()
    try:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        infos = await loop.getaddrinfo(hostname, None, family=family, type=socket.SOCK_DGRAM)
        advertise = infos[0][4][0]
    except OSError as exc:
        raise OSError(f"gossip on {listen}: cannot resolve this host's name {hostname!r} to "
                      f"an address to advertise: {exc}") from None
    if ipaddress.ip_address(advertise).is_loopback:
        log.warning("gossip on %s advertises %s (what %s resolves to): other machines "
                    "cannot reach it; listen on a routable address instead", listen,
                    advertise, hostname)
    return bind, advertise
