"""The node's cluster membership: runs the gossip Memberlist, answers `cluster members` and
`stats gossip`, and announces a graceful leave when the node stops.

A node component (`node.add(Membership(config))`), present only when --gossip-port is given.
It starts after the protocol server, so a member that gossips is already serving (its
metadata says status active), and stops before it, so peers hear "left" while in-flight
replies are still being sent.

Text commands (extensions in memcached's style):

    cluster members   ->  MEMBER <name> <host>:<gossip-port> <state> <incarnation>\\r\\n ...
                          END\\r\\n          (state: alive, suspect, dead or left; by name)
    stats gossip      ->  STAT <counter> <value>\\r\\n ... END\\r\\n
    cluster           ->  ERROR\\r\\n        (no or unknown sub-command, as memcached's
    cluster <other>   ->  ERROR\\r\\n         `stats <other>` and `slabs <other>`)
    cluster members x ->  CLIENT_ERROR bad command line format\\r\\n
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

from pycache_cluster.config import Config
from pycache_cluster.gossip import (
    Keyring,
    Listener,
    Member,
    Memberlist,
    NetTransport,
    NodeMeta,
    Status,
    members_reply,
    stats_reply,
)
from pycache_cluster.gossip.config import PRESETS

log = logging.getLogger(__name__)

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"


class _LogListener(Listener):
    """Membership events in the node's log (-v); the ring will listen here too."""

    def on_join(self, member: Member) -> None:
        log.info("member %s joined (%s:%d, incarnation %d)", member.name, member.host,
                 member.port, member.incarnation)

    def on_leave(self, member: Member) -> None:
        log.info("member %s is %s", member.name, member.state.label)


class Membership:
    """Owns the Memberlist of a node; registers `cluster` and `stats gossip` while it runs."""

    def __init__(self, config: Config):
        self.config = config
        # Read the key file now, so that a bad one stops the node before it listens.
        self.keyring = Keyring.from_file(config.cluster_key_file) \
            if config.cluster_key_file else None
        self.memberlist: Memberlist | None = None
        self._joiner: asyncio.Task | None = None

    async def start(self, node) -> None:
        cfg = self.config
        bind_host, advertise_host = await _addresses(cfg.listen)
        gossip = PRESETS[cfg.gossip_preset](
            name=cfg.node_name or f"{socket.gethostname()}:{cfg.port}",
            bind_host=bind_host, bind_port=cfg.gossip_port, advertise_host=advertise_host,
            keyring=self.keyring)
        ml = Memberlist(gossip, NetTransport(gossip.bind_host, gossip.bind_port),
                        _LogListener(),
                        meta=NodeMeta(client_host=advertise_host or bind_host,
                                      client_port=cfg.port, status=Status.JOINING))
        await ml.start()
        self.memberlist = ml
        # The protocol server started before us: this node is serving.
        ml.update_meta(status=Status.ACTIVE)
        node.state.extensions.add_command(b"cluster", self._cluster_command)
        node.state.extensions.add_stats(b"gossip", self._stats_gossip)
        if cfg.seeds:
            self._joiner = asyncio.ensure_future(self._join(cfg.seeds))
        log.info("gossip member %s on %s:%d", ml.name, *ml.config.advertise())

    async def stop(self, node) -> None:
        node.state.extensions.remove_command(b"cluster")
        node.state.extensions.remove_stats(b"gossip")
        if self._joiner is not None:
            self._joiner.cancel()
            await asyncio.gather(self._joiner, return_exceptions=True)
        ml = self.memberlist
        if ml is None:
            return
        self.memberlist = None
        await ml.leave()        # waits at most the preset's leave_timeout
        await ml.shutdown()

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

    def _cluster_command(self, conn, args: list[bytes]) -> bytes:
        if len(args) < 2 or args[1] != b"members":
            return b"ERROR\r\n"
        if len(args) != 2:
            return BAD_FORMAT
        return members_reply(self.memberlist.members())

    def _stats_gossip(self, args: list[bytes]) -> bytes:
        return stats_reply(self.memberlist.stats())


async def _addresses(listen: str) -> tuple[str, str | None]:
    """(address to bind gossip on, address to advertise or None for the same).

    Gossip carries addresses, not names: a host name given to -l is resolved. On a wildcard
    (-l 0.0.0.0 or ::) peers are told the address this machine's hostname resolves to.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(listen or "0.0.0.0", None, type=socket.SOCK_DGRAM)
    bind = infos[0][4][0]
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
