"""The operator's cluster commands, on any member:

    cluster forget <name>   a member dead for good leaves the lock ring (the cache's ring
                            dropped it when it was declared dead, and the survivors' walk
                            then brought its keys back to N copies): OK, once every ring
                            member took it (SERVER_ERROR forget not confirmed by <names>
                            otherwise); refused for this node and for a member gossip sees
                            alive or suspect (CLIENT_ERROR ...)
    cluster leave [<name>]  a graceful leave of this node or of the named member, as SIGTERM
                            makes it: hand over, leave, exit. Needs -A on the node that
                            leaves, as `shutdown` does (ERROR: shutdown not enabled)
    cluster repair          an anti-entropy round with every ring peer, now: OK at once, the
                            rounds' counts in `stats cluster` (anti_entropy_*)

Between members only: `cluster forgotten <name>` (what forget tells every member), and the
remote leave goes to the named member as `cluster leave <name>`.

Why forget is needed: failure detection never moves a lock (locks/placement.py), so a member
that died stays an owner of its lock names, and with N = 2 a name it owned is UNAVAILABLE
until it comes back. Forgetting it is a deliberate ring change, like a graceful leave: the
names' new owners wait --lock-max-ttl x (1 + rho) before they vote, then grant. A member
forgotten that was in fact alive (behind a partition) refutes it once it is heard again and
rejoins both rings as a join does.
"""
from __future__ import annotations

import asyncio
import logging

from pycache_cluster.cluster._link import PeerError
from pycache_cluster.gossip import State

log = logging.getLogger(__name__)

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
NOT_ENABLED = b"ERROR: shutdown not enabled\r\n"
LIVE = (State.ALIVE, State.SUSPECT)


class Admin:
    """forget, leave and repair for one node's Cluster component."""

    def __init__(self, cluster):
        self.cluster = cluster

    def command(self, conn, args: list[bytes]):
        sub, n = args[1], len(args)
        if sub == b"forget":
            return self.forget(args[2].decode(errors="replace")) if n == 3 else BAD_FORMAT
        if sub == b"forgotten":
            if not conn.is_peer:
                return b"CLIENT_ERROR cluster forgotten is for cluster peers\r\n"
            if n != 3:
                return BAD_FORMAT
            self.apply_forget(args[2].decode(errors="replace"))
            return b"OK\r\n"
        if sub == b"leave":
            if n > 3:
                return BAD_FORMAT
            name = args[2].decode(errors="replace") if n == 3 else self.cluster.name
            return self.leave(name)
        if sub == b"repair":     # from a client; a peer's `cluster repair <name>` is its own
            return self.repair()
        return b"ERROR\r\n"

    # -- forget --------------------------------------------------------------------------

    def forget(self, name: str):
        c = self.cluster
        if name == c.name:
            return b"CLIENT_ERROR cannot forget this node: stop it (cluster leave) instead\r\n"
        member = next((m for m in c.members() if m.name == name), None)
        if member is not None and member.state in LIVE:
            return (b"CLIENT_ERROR member %s is %s: only a member dead for good can be "
                    b"forgotten\r\n" % (name.encode(), member.state.label.encode()))
        if member is None and not self._in_lock_ring(name):
            return b"CLIENT_ERROR no member %s\r\n" % name.encode()
        self.apply_forget(name)
        return self._tell_members(name)

    def _in_lock_ring(self, name: str) -> bool:
        placement = self.cluster.lock_placement
        return placement is not None and name in placement.ring.weights

    def apply_forget(self, name: str) -> None:
        """This node forgets `name`: out of the lock ring, its hints dropped, no more
        reconnects to it. Undone by itself if the member is heard alive again."""
        c = self.cluster
        if name == c.name:
            return
        c.forgotten.add(name)
        ml = c.membership.memberlist
        if ml is not None:
            ml.forget(name)         # gossip lists it as left (if it still lists it at all)
        dropped = c.hints.drop(name)
        c.membership.reconnect.failed.pop(name, None)
        log.warning("forgot member %s (%d hint(s) for it dropped)", name, dropped)
        for listener in c.ring_listeners:
            listener()

    async def _tell_members(self, name: str) -> bytes:
        c = self.cluster
        others = [n for n in c.routes.others() if n != name]
        replies = await asyncio.gather(*(self._ask(n, b"cluster forgotten %s\r\n"
                                                   % name.encode()) for n in others))
        missed = [n for n, r in zip(others, replies, strict=True) if r != b"OK\r\n"]
        if missed:
            return b"SERVER_ERROR forget not confirmed by %s\r\n" % ",".join(missed).encode()
        return b"OK\r\n"

    async def _ask(self, member: str, request: bytes) -> bytes | None:
        link = self.cluster.member_link(member)
        if link is None:
            return None
        try:
            async with asyncio.timeout(self.cluster.config.forward_timeout * 2):
                return await link.call(request)
        except (PeerError, TimeoutError, OSError) as exc:
            log.info("%s to %s: %r", request.split()[1].decode(), member, exc)
            return None

    # -- leave ---------------------------------------------------------------------------

    def leave(self, name: str):
        c = self.cluster
        if name == c.name:
            if not c.config.enable_shutdown:
                return NOT_ENABLED
            log.warning("cluster leave: leaving the cluster and stopping")
            # The reply is written before the stop begins; the stop leaves first.
            asyncio.get_running_loop().call_soon(c.state.on_shutdown, True)
            return b"OK\r\n"
        member = next((m for m in c.members() if m.name == name), None)
        if member is None or member.state not in LIVE:
            state = member.state.label if member is not None else "unknown"
            return b"CLIENT_ERROR member %s is %s\r\n" % (name.encode(), state.encode())
        if c.member_link(name) is None:
            return b"CLIENT_ERROR member %s is not in the ring\r\n" % name.encode()
        return self._relay(name)

    async def _relay(self, name: str) -> bytes:
        reply = await self._ask(name, b"cluster leave %s\r\n" % name.encode())
        return reply if reply is not None else \
            b"SERVER_ERROR peer %s unreachable\r\n" % name.encode()

    # -- repair --------------------------------------------------------------------------

    def repair(self) -> bytes:
        c = self.cluster
        peers = [n for n in c.ring.nodes if n != c.name]
        for peer in peers:
            asyncio.ensure_future(c.anti_entropy.round(peer))
        log.info("cluster repair: anti-entropy rounds with %d peer(s)", len(peers))
        return b"OK\r\n"
