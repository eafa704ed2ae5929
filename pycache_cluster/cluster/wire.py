"""The peer dialect: what one node sends another, built here once, and what its replies
mean. The replies are read by one native parser (csrc/pc_reply.h, pc_reply_meta), which
the request path (cluster/_coord.pyx) calls directly and Python reaches through
`reply_fields`.

A peer link (cluster/_link.pyx) is a client connection to the member's client port, opened
with a handshake in which both ends prove the cluster key (cluster/handshake.py:
`cluster peer <name> <nonce>`, `cluster auth <proof>`). Over it goes memcached's text and
meta protocol, plus what only a proven peer may send:

  mg/ms/md/ma <key> ... E<v>   a replica's read or write at exactly version v: applied
                               last-write-wins where it lands, never routed on. `mg ... E1`:
                               a miss answers `EN c<v>`, the version of what the owner
                               deleted (or 0), so a stale copy never comes back
  EX c<v>                      a replica's write refused: the owner holds the newer v
  mn c                         a clock fence: `MN c<v>`, the owner's clock, past every
                               version it made or applied
  mn P                         the next request was routed here by a peer: answer it here,
                               whatever this node's ring says (a leaving node routes a
                               peer's request on once, marked so)
  flush_all <d> E<v>           a member's share of a cluster flush_all, cut off above v;
                               `OK c<v>` answers this node's cut-off
  cluster digest|versions|repair   anti-entropy's exchanges (cluster/antientropy.py); the
                               answer is a VA frame of bytes (`frame`)
  cluster forgotten|leave      the operators' commands (cluster/admin.py)
  SERVER_ERROR node leaving the cluster   a write a leaving node will not take
  SERVER_ERROR no copy yet     a read answer's miss while hand-overs may still bring keys

A request with noreply or q is followed by `mn` on the link, so its reply is whatever came
before MN. The key goes as it is, or base64 with the b flag when it holds bytes a meta
token cannot (`key_token`).
"""
from __future__ import annotations

import base64

from pycache_cluster.cluster._coord import reply_fields

#: The owner holds the pushed version, or a newer one: a hand-over's copy may be dropped.
HELD = (b"HD", b"EX")
#: A replayed replica write that needs no further replay: applied (to the key, or to
#: nothing), or superseded by a newer version.
SETTLED = HELD + (b"NF", b"EN", b"TOUCHED", b"NOT_FOUND")


def key_token(key: bytes) -> tuple[bytes, bytes]:
    """The key as a meta token: as it is, or base64 with the b flag."""
    if any(b <= 32 or b == 127 for b in key):
        return base64.b64encode(key), b" b"
    return key, b""


def replica_set(key: bytes, value: bytes, flags: int, exptime: int, version: int) -> bytes:
    """An item at exactly its version (exptime: unix seconds, 0 never)."""
    token, flag = key_token(key)
    return b"ms %s %d F%d T%d E%d%s\r\n%s\r\n" % (token, len(value), flags, exptime,
                                                 version, flag, value)


def push_request(item) -> bytes:
    """A store item (store.peek) as a replica write."""
    return replica_set(item.key, item.value, item.flags, item.exptime, item.version)


def replica_delete(key: bytes, version: int) -> bytes:
    """A tombstone at exactly its version."""
    token, flag = key_token(key)
    return b"md %s E%d%s\r\n" % (token, version, flag)


def flush_request(delay: int, version: int = 0) -> bytes:
    """A member's share of a cluster flush_all, cut off above `version` (0: its own)."""
    if version:
        return b"flush_all %d E%d\r\n" % (delay, version)
    return b"flush_all %d\r\n" % delay


def flush_cutoff(reply: bytes) -> int:
    """The cut-off in a member's `OK c<v>` answer to flush_request (0: none)."""
    status, number, _ = reply_fields(reply)
    return number if status == b"OK" else 0


def status(reply) -> bytes | None:
    """A reply's status (b"HD", b"TOUCHED"...), None for an error line or not a reply."""
    return reply_fields(reply)[0] if isinstance(reply, bytes) else None


def frame(payload: bytes) -> bytes:
    """A reply carrying bytes: the link's framing (pc_reply_frame) reads `VA <n>` and n
    bytes."""
    return b"VA %d\r\n%s\r\n" % (len(payload), payload)


def unframe(reply: bytes) -> bytes | None:
    """The bytes of a `frame`d reply; None when the reply is not one."""
    status, _, value = reply_fields(reply)
    return value if status == b"VA" else None
