"""`pycache-cluster health [--ready]`: the container's and Kubernetes' probe, run beside the
node. It reads the node's own settings the way `serve` does (PYCACHE_* variables, then any
serve flags given after it), so it asks the port, the Unix socket and the TLS the node
really uses, and authenticates as the node's clients must (the first user of -Y's file).

Live: the node answers `version` (over binary with -S, which refuses text). Ready, for a
cluster member: live, and the node is a member of the ring (`stats cluster` ring_owner 1)
whose own status is active (not joining, not leaving: a leaving node stops being ready as
soon as its hand-over starts). Exit 0 when so, 1 otherwise, with the reason on stdout.
"""
from __future__ import annotations

import argparse
import socket
import ssl
import struct

TIMEOUT = 3.0


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("health", help="probe the node beside you (exit 0 live/ready, 1 not)",
                       description="Probe this machine's node with its own settings "
                       "(PYCACHE_* variables; serve flags may follow). Live: it answers "
                       "version. --ready: also a ring member, active, not leaving.")
    p.add_argument("--ready", action="store_true", help="readiness, not just liveness")
    return p


def _config(flags: list[str]):
    from pycache_cluster.cli import build_parser, config_from_args

    return config_from_args(build_parser().parse_args(["serve", *flags]))


def _connect(cfg) -> socket.socket:
    if cfg.unix_socket:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(TIMEOUT)
        s.connect(cfg.unix_socket)
        return s
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(cfg.listen, cfg.listen)
    s = socket.create_connection((host, cfg.port), timeout=TIMEOUT)
    if not cfg.tls:
        return s
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False      # reached by address; the certificate names the node
    if cfg.ssl_ca_cert:
        ctx.load_verify_locations(cfg.ssl_ca_cert)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    # The node's own certificate, for a node that requires clients' (ssl_verify_mode >= 2).
    ctx.load_cert_chain(cfg.ssl_chain_cert, cfg.ssl_key)
    return ctx.wrap_socket(s)


def _read_until(s: socket.socket, end: bytes) -> bytes:
    buf = b""
    while not buf.endswith(end):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("the node closed the connection")
        buf += chunk
    return buf


def _binary_version(s: socket.socket) -> bool:
    s.sendall(struct.pack(">BBHBBHIIQ", 0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0))
    head = b""
    while len(head) < 24:
        chunk = s.recv(24 - len(head))
        if not chunk:
            return False
        head += chunk
    return head[0] == 0x81 and struct.unpack(">H", head[6:8])[0] == 0


def _authenticate(s: socket.socket, auth_file: str) -> None:
    """-Y: the first user of the node's own file, as `set <key> 0 0 <len>` of `user pass`."""
    with open(auth_file) as f:
        user, _, password = next(line for line in f if ":" in line).strip().partition(":")
    token = f"{user} {password}".encode()
    s.sendall(b"set health 0 0 %d\r\n%s\r\n" % (len(token), token))
    reply = _read_until(s, b"\r\n")
    if reply != b"STORED\r\n":
        raise ConnectionError(f"authentication refused: {reply.strip().decode()}")


def probe(cfg, ready: bool) -> tuple[bool, str]:
    with _connect(cfg) as s:
        if cfg.sasl:
            ok = _binary_version(s)
            return ok, "live (binary version)" if ok else "no answer to binary version"
        if cfg.auth_file:
            _authenticate(s, cfg.auth_file)
        s.sendall(b"version\r\n")
        if not _read_until(s, b"\r\n").startswith(b"VERSION "):
            return False, "no answer to version"
        if not ready or cfg.gossip_port is None:
            return True, "live" if not ready else "ready (a node alone)"
        s.sendall(b"stats cluster\r\n")
        stats = _read_until(s, b"END\r\n")
        s.sendall(b"cluster ring\r\n")
        ring = _read_until(s, b"END\r\n")
    owner = b"STAT ring_owner 1\r\n" in stats
    status = next((p.split(b"=", 1)[1] for p in ring.split(b"\r\n", 1)[0].split()
                   if p.startswith(b"status=")), b"?").decode()
    if status != "active":
        return False, f"not ready: {status}"
    if not owner:
        return False, "not ready: not (yet) a member of the ring"
    return True, "ready: a ring member, active"


def run(args: argparse.Namespace) -> int:
    flags = [f for f in args.serve_flags if f != "--"]     # what follows: serve's flags
    try:
        ok, why = probe(_config(flags), args.ready)
    except (OSError, ConnectionError, StopIteration) as e:
        ok, why = False, f"not live: {e}"
    print(why)
    return 0 if ok else 1
