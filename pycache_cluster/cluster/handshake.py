"""The peer handshake: how a link proves that both ends hold the cluster key.

    link   -> node   cluster peer <link's node name> <cnonce>
    node   -> link   PEER <node name> <snonce> <proof_s>         (PEER <node name> - - unkeyed)
    link   -> node   cluster auth <proof_c>
    node   -> link   OK                      (or CLIENT_ERROR authentication failed)

proof_s = HMAC-SHA256(key, "server" cnonce snonce server-name client-name) and proof_c the
same with "client" and the nonces swapped, hex. Each side proves with its first key and
accepts any key of its keyring, so keys rotate as gossip's do. Fresh 16-byte nonces on both
sides: a recorded exchange proves nothing later. Without a key file on both sides the node
answers `PEER <name> - -` and the link is a peer at once; a keyed side refuses an unkeyed one.
Only a proven peer connection may use the peer-only behaviour (its requests are answered
locally and never forwarded again).
"""
from __future__ import annotations

import hashlib
import hmac
import os

from pycache_cluster.gossip import Keyring

UNAUTHENTICATED = b"CLIENT_ERROR authentication failed\r\n"
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"


class HandshakeError(Exception):
    """The other end is not a peer of this cluster (or not the node we meant)."""


def _proof(key: bytes, role: bytes, mine: bytes, theirs: bytes, *names: str) -> bytes:
    msg = b"\0".join([role, mine, theirs, *(n.encode() for n in names)])
    return hmac.new(key, msg, hashlib.sha256).hexdigest().encode()


def _valid(keyring: Keyring, proof: bytes, role: bytes, a: bytes, b: bytes, *names) -> bool:
    return any(hmac.compare_digest(_proof(k, role, a, b, *names), proof)
               for k in keyring.keys)


class Handshake:
    """Both ends of the handshake for one node (its name and keyring)."""

    def __init__(self, name: str, keyring: Keyring | None):
        self.name = name
        self.keyring = keyring

    # -- the link's side ---------------------------------------------------------------------

    def hello(self, expect: str) -> tuple[bytes, dict]:
        """The first line a link sends to the node `expect`, and the session to keep."""
        cnonce = os.urandom(16).hex().encode()
        return (b"cluster peer " + self.name.encode() + b" " + cnonce + b"\r\n",
                {"cnonce": cnonce, "expect": expect, "sent_auth": False})

    def on_line(self, session: dict, line: bytes) -> bytes | bool:
        """The node's answer: the next line to send, or True once the link is a peer.
        Raises HandshakeError when the node is not the peer we meant."""
        parts = line.split()
        if session["sent_auth"]:
            if parts == [b"OK"]:
                return True
            raise HandshakeError(f"peer {session['expect']} refused us: {line.strip()!r}")
        if len(parts) != 4 or parts[0] != b"PEER":
            raise HandshakeError(f"peer {session['expect']} answered {line.strip()[:80]!r}")
        name, snonce, proof = parts[1].decode(errors="replace"), parts[2], parts[3]
        if name != session["expect"]:
            raise HandshakeError(f"expected peer {session['expect']}, found {name}")
        if self.keyring is None:
            if snonce != b"-":
                raise HandshakeError(f"peer {name} has a cluster key and we have none")
            return True
        if snonce == b"-" or not _valid(self.keyring, proof, b"server", session["cnonce"],
                                        snonce, name, self.name):
            raise HandshakeError(f"peer {name} did not prove the cluster key")
        session["sent_auth"] = True
        mine = _proof(self.keyring.keys[0], b"client", snonce, session["cnonce"], self.name,
                      name)
        return b"cluster auth " + mine + b"\r\n"

    # -- the node's side (extension commands on a client connection) ---------------------------

    def on_peer(self, conn, args: list[bytes]) -> bytes:
        """`cluster peer <name> <cnonce>`."""
        if len(args) != 4:
            return BAD_FORMAT
        client, cnonce = args[2].decode(errors="replace"), args[3]
        if self.keyring is None:
            conn.mark_peer(client)
            return b"PEER " + self.name.encode() + b" - -\r\n"
        snonce = os.urandom(16).hex().encode()
        conn.session = (client, cnonce, snonce)
        proof = _proof(self.keyring.keys[0], b"server", cnonce, snonce, self.name, client)
        return b"PEER " + self.name.encode() + b" " + snonce + b" " + proof + b"\r\n"

    def on_auth(self, conn, args: list[bytes]) -> bytes:
        """`cluster auth <proof>`."""
        session, conn.session = conn.session, None
        if len(args) != 3:
            return BAD_FORMAT
        if self.keyring is None or session is None:
            return UNAUTHENTICATED
        client, cnonce, snonce = session
        if not _valid(self.keyring, args[2], b"client", snonce, cnonce, client, self.name):
            return UNAUTHENTICATED
        conn.mark_peer(client)
        return b"OK\r\n"
