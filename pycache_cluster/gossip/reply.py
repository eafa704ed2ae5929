"""Text replies of the node's gossip commands: `cluster members` and `stats gossip`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .state import Member, State


def members_lines(members: Iterable[Member]) -> list[str]:
    """`MEMBER <name> <host>:<gossip-port> <state> <incarnation>` per member, then `END`."""
    lines = [f"MEMBER {mb.name} {_hostport(mb.host, mb.port)} {mb.state.label} {mb.incarnation}"
             for mb in sorted(members, key=lambda mb: mb.name)]
    lines.append("END")
    return lines


def members_reply(members: Iterable[Member]) -> bytes:
    return "".join(line + "\r\n" for line in members_lines(members)).encode()


def stats_reply(stats: Mapping[str, int]) -> bytes:
    """memcached's `STAT <name> <value>` lines, then `END`."""
    return "".join(f"STAT {k} {v}\r\n" for k, v in stats.items()).encode() + b"END\r\n"


def parse_members(lines: Iterable[str]) -> dict[str, tuple[str, int, State, int]]:
    """The inverse of members_lines: name -> (host, port, state, incarnation)."""
    out = {}
    for line in lines:
        parts = line.split()
        if not parts or parts[0] == "END":
            continue
        if parts[0] != "MEMBER" or len(parts) != 5:
            raise ValueError(f"not a member line: {line!r}")
        host, _, port = parts[2].rpartition(":")
        out[parts[1]] = (host.strip("[]"), int(port), State[parts[3].upper()], int(parts[4]))
    return out


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
