"""Member records: the four gossip states, node metadata, and what one member knows of another."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field


class State(enum.IntEnum):
    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    # Announced its own departure (graceful leave); never refuted, never probed.
    LEFT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Status(str, enum.Enum):
    """The node's own lifecycle, carried in its metadata; the ring only uses ACTIVE members."""

    JOINING = "joining"
    ACTIVE = "active"
    LEAVING = "leaving"


class MetaError(ValueError):
    """Metadata that does not decode or is too large to gossip."""


@dataclass(frozen=True)
class NodeMeta:
    client_host: str = ""
    client_port: int = 0
    status: Status = Status.JOINING
    weight: int = 1
    tags: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        doc = {
            "h": self.client_host,
            "p": self.client_port,
            "s": self.status.value,
            "w": self.weight,
            "t": self.tags,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> NodeMeta:
        if not data:
            return cls()
        try:
            doc = json.loads(data)
            tags = doc.get("t", {})
            if not isinstance(tags, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
            ):
                raise MetaError("tags must map strings to strings")
            return cls(
                client_host=str(doc.get("h", "")),
                client_port=int(doc.get("p", 0)),
                status=Status(doc.get("s", Status.JOINING.value)),
                weight=int(doc.get("w", 1)),
                tags=dict(tags),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise MetaError(f"bad metadata: {exc}") from None


@dataclass(frozen=True)
class Member:
    """A snapshot of one member as this node sees it (what listeners and members() get)."""

    name: str
    host: str
    port: int
    state: State
    incarnation: int
    meta: NodeMeta


class NodeState:
    """The mutable record behind a Member. Invariant: one record per name in the table."""

    __slots__ = (
        "_decoded",
        "host",
        "incarnation",
        "meta",
        "name",
        "port",
        "state",
        "state_change",
    )

    def __init__(self, name: str, host: str, port: int, incarnation: int, state: State,
                 meta: bytes, now: float):
        self.name = name
        self.host = host
        self.port = port
        self.incarnation = incarnation
        self.state = state
        self.meta = meta
        self.state_change = now
        self._decoded: tuple[bytes, NodeMeta] | None = None

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    def set_state(self, state: State, now: float) -> None:
        if state != self.state:
            self.state = state
            self.state_change = now

    def decoded_meta(self) -> NodeMeta:
        # Metadata stays encoded in the hot path (push-pull merges compare bytes); it is
        # decoded only when someone looks, and only once per change.
        if self._decoded is None or self._decoded[0] is not self.meta:
            try:
                meta = NodeMeta.decode(self.meta)
            except MetaError:
                meta = NodeMeta()
            self._decoded = (self.meta, meta)
        return self._decoded[1]

    def snapshot(self) -> Member:
        return Member(self.name, self.host, self.port, self.state, self.incarnation,
                      self.decoded_meta())
