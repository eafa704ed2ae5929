"""Runs the cluster differential fuzz (fuzzgen.py): each sequence goes, on one connection that
then half-closes, to one node of a cluster and to the real memcached; the replies are compared
after normalising CAS values and times. One sequence at a time, so sequences never overlap."""
from __future__ import annotations

from dataclasses import dataclass

from cluster.fuzzgen import sequence, shrink, stream
from helpers.wire import Conn, normalise


def conversation(host: str, port: int, data: bytes) -> bytes:
    with Conn(port, host=host) as c:
        c.send(data)
        return c.half_close()


@dataclass
class Difference:
    seed: int
    node: int
    sent: list[bytes]
    ours: bytes
    memcached: bytes

    def __str__(self) -> str:
        return (f"seed {self.seed}, node {self.node}\nsent: {b''.join(self.sent)!r}\n"
                f"ours:      {self.ours!r}\nmemcached: {self.memcached!r}")


class Fuzz:
    def __init__(self, fleet, memcached_port: int):
        self.fleet = fleet
        self.memcached_port = memcached_port

    def replies(self, node: int, commands: list[bytes]) -> tuple[bytes, bytes]:
        data = stream(commands)
        n = self.fleet[node]
        ours = normalise(conversation(n.host, n.port, data))
        theirs = normalise(conversation("127.0.0.1", self.memcached_port, data))
        return ours, theirs

    def check(self, seed: int) -> Difference | None:
        commands = sequence(seed)
        node = seed % len(self.fleet)
        ours, theirs = self.replies(node, commands)
        if ours == theirs:
            return None

        def differs(trial):
            a, b = self.replies(node, trial)
            return a != b
        small = shrink(commands, differs)
        ours, theirs = self.replies(node, small)
        return Difference(seed, node, small, ours, theirs)
