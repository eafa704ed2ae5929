"""TLS contexts from the config: the client port's (server side) and the peer links' (client).

memcached's spelling: -Z turns TLS on for the client port, `-o ssl_chain_cert=<pem>,
ssl_key=<pem>,ssl_ca_cert=<pem>,ssl_verify_mode=<0..3>,ssl_min_version=<0..3>,
ssl_ciphers=<list>`. ssl_verify_mode is memcached's: 0 no client certificate asked, 1 one
asked and checked when given, 2 and 3 one required (3 is memcached's "once", the same for a
connection that handshakes once). With TLS on, this node's peer links to other members are
TLS too (the client port is where members reach each other): they present this node's
certificate (members with ssl_verify_mode >= 2 require one) and check the member's against
ssl_ca_cert when it is given. Host names are not checked on peer links: members are reached
by address, and the cluster-key handshake that follows proves membership.
"""
from __future__ import annotations

import ssl

# memcached's ssl_verify_mode -> Python's.
VERIFY = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED, 3: ssl.CERT_REQUIRED}
# memcached's ssl_min_version (default 2: TLS 1.2).
MIN_VERSION = {0: ssl.TLSVersion.TLSv1, 1: ssl.TLSVersion.TLSv1_1,
               2: ssl.TLSVersion.TLSv1_2, 3: ssl.TLSVersion.TLSv1_3}
#: Seconds a client has to complete its handshake (a plaintext client never does).
HANDSHAKE_TIMEOUT = 10.0


def check(cfg) -> None:
    """ValueError for settings that cannot work (files are read when the node starts)."""
    given = [name for name in ("ssl_chain_cert", "ssl_key", "ssl_ca_cert")
             if getattr(cfg, name)]
    if not cfg.tls:
        if given:
            raise ValueError(f"{', '.join(given)} need TLS on (-Z)")
        return
    if not cfg.ssl_chain_cert or not cfg.ssl_key:
        raise ValueError("TLS (-Z) needs -o ssl_chain_cert=<file>,ssl_key=<file>")
    if cfg.ssl_verify_mode not in VERIFY:
        raise ValueError(f"ssl_verify_mode {cfg.ssl_verify_mode}: one of 0, 1, 2, 3")
    if cfg.ssl_verify_mode and not cfg.ssl_ca_cert:
        raise ValueError("ssl_verify_mode > 0 needs ssl_ca_cert=<file> to check clients with")
    if cfg.ssl_min_version not in MIN_VERSION:
        raise ValueError(f"ssl_min_version {cfg.ssl_min_version}: one of 0, 1, 2, 3")


class Tls:
    """Both contexts, made once at start (a bad file fails the start, not a connection)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.server = self._server_context(cfg)
        self.client = self._peer_context(cfg)

    @staticmethod
    def _server_context(cfg) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = MIN_VERSION[cfg.ssl_min_version]
        ctx.load_cert_chain(cfg.ssl_chain_cert, cfg.ssl_key)
        if cfg.ssl_ca_cert:
            ctx.load_verify_locations(cfg.ssl_ca_cert)
        ctx.verify_mode = VERIFY[cfg.ssl_verify_mode]
        if cfg.ssl_ciphers:
            ctx.set_ciphers(cfg.ssl_ciphers)
        return ctx

    @staticmethod
    def _peer_context(cfg) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = MIN_VERSION[cfg.ssl_min_version]
        ctx.check_hostname = False
        ctx.load_cert_chain(cfg.ssl_chain_cert, cfg.ssl_key)
        if cfg.ssl_ca_cert:
            ctx.load_verify_locations(cfg.ssl_ca_cert)
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if cfg.ssl_ciphers:
            ctx.set_ciphers(cfg.ssl_ciphers)
        return ctx

    def describe(self) -> str:
        cfg = self.cfg
        clients = {0: "not asked", 1: "checked when given", 2: "required",
                   3: "required"}[cfg.ssl_verify_mode]
        return (f"certificate {cfg.ssl_chain_cert}, CA {cfg.ssl_ca_cert or '(none)'}, client "
                f"certificates {clients}, minimum {MIN_VERSION[cfg.ssl_min_version].name}, "
                f"peer links over TLS")


def parse_suboptions(values: list[str]) -> dict[str, str]:
    """memcached's -o: comma-separated name=value (or bare name) items, -o may repeat."""
    out = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, val = item.partition("=")
            if name not in SUBOPTIONS:
                raise ValueError(f"Illegal suboption \"{item}\" (supported: "
                                 f"{', '.join(SUBOPTIONS)})")
            out[name] = val
    return out


# -o names -> (Config field, converter).
SUBOPTIONS = {
    "ssl_chain_cert": ("ssl_chain_cert", str),
    "ssl_key": ("ssl_key", str),
    "ssl_ca_cert": ("ssl_ca_cert", str),
    "ssl_verify_mode": ("ssl_verify_mode", int),
    "ssl_min_version": ("ssl_min_version", int),
    "ssl_ciphers": ("ssl_ciphers", str),
}
