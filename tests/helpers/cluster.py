"""Real node processes with gossip on, each on its own 127.0.0.x: started as a user would
(the CLI), restartable at the same address, read over TCP."""
from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path

from helpers.servers import Server, free_port, node_argv, node_env
from helpers.wire import Conn
from pycache_cluster.gossip.reply import parse_members


class NodeProcess:
    """One `pycache-cluster serve` node with gossip on host. Its ports are chosen once, so a
    restart comes back at the same address under the same name."""

    def __init__(self, name: str, host: str, key_file: Path | None, preset: str = "local",
                 extra: tuple[str, ...] = ()):
        self.name = name
        self.host = host
        self.port, self.gossip_port = self._pick_ports()
        self.addr = f"{host}:{self.gossip_port}"
        self._flags = ["--node-name", name, "--gossip-port", str(self.gossip_port),
                       "--gossip-preset", preset]
        if key_file:
            self._flags += ["--cluster-key-file", str(key_file)]
        self._flags += list(extra)
        self.join: list[str] = []
        self.server: Server | None = None
        self._logs: list[str] = []

    def _pick_ports(self) -> tuple[int, int]:
        port = free_port(self.host)
        gossip_port = free_port(self.host, udp=True)
        while gossip_port == port:      # both were free: the kernel may hand it out twice
            gossip_port = free_port(self.host, udp=True)
        return port, gossip_port

    def _argv(self, argv: list[str]) -> list[str]:
        return argv

    @property
    def proc(self):
        return self.server.proc

    def start(self, join: list[str] | None = None) -> NodeProcess:
        """Starts (or restarts, with the same seeds) the node; returns once it accepts
        clients (its gossip is up by then; joining the seeds may not be)."""
        if join is not None:
            self.join = join
        if self.server is not None:
            self._logs.append(self.server.output())
        flags = [*self._flags, "--join", ",".join(self.join)] if self.join else self._flags
        self.server = Server(self._argv(node_argv(self.port, *flags, listen=self.host)),
                             self.port,
                             env=node_env(), host=self.host).start()
        return self

    def call(self, request: bytes) -> bytes:
        with Conn(self.port, host=self.host, timeout=5) as c:
            return c.call(request)

    def conn(self, timeout: float = 10.0) -> Conn:
        return Conn(self.port, host=self.host, timeout=timeout)

    def members(self) -> dict:
        """name -> (host, port, State, incarnation), as this node sees the cluster ({} while
        it is down or not yet gossiping)."""
        if not self.server.alive():
            return {}
        try:
            return parse_members(self.call(b"cluster members\r\n").decode().splitlines())
        except (OSError, ValueError):
            return {}

    def stats(self, which: str = "gossip") -> dict[str, int | str]:
        out = {}
        for line in self.call(b"stats " + which.encode() + b"\r\n").decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = int(parts[2]) if parts[2].isdigit() else parts[2]
        return out

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(sig_first=False)

    def log_tail(self) -> str:
        text = "".join(self._logs) + (self.server.output() if self.server else "")
        return text[-3000:]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail()}")


def owned_keys(fleet, node: int, count: int, prefix: str = "k") -> list[bytes]:
    """`count` keys whose owner is fleet[node] (asked of the cluster itself)."""
    want = fleet[node].name.encode()
    out, i = [], 0
    with fleet[0].conn() as c:
        while len(out) < count:
            key = f"{prefix}{i}".encode()
            if c.call(b"cluster owners " + key + b"\r\n").split()[1] == want:
                out.append(key)
            i += 1
    return out


def converged(procs: list[NodeProcess]) -> bool:
    """Every node routes with the same ring of exactly these nodes."""
    try:
        seen = [p.stats("cluster") for p in procs]
    except (OSError, AssertionError):
        return False
    return (all(s.get("ring_nodes") == len(procs) for s in seen)
            and len({s.get("ring_checksum") for s in seen}) == 1)


class Fleet:
    """Nodes started as one cluster; extra flags (--forward-timeout...) for all of them."""

    def __init__(self, tmp_path_factory, base: int, n: int, *extra: str, keyed: bool = True):
        self.key_file = None
        if keyed:
            path = tmp_path_factory.mktemp("fleet") / "cluster.key"
            path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
            self.key_file = path
        self.nodes = [NodeProcess(f"c{base + i}", f"127.0.0.{base + i}", self.key_file,
                                  extra=extra) for i in range(n)]

    def start(self) -> Fleet:
        seeds = [self.nodes[0].addr]
        for node in self.nodes:
            node.start(join=seeds if node is not self.nodes[0] else [])
        self.wait_converged()
        return self

    def wait_converged(self, nodes=None, timeout: float = 30.0) -> None:
        nodes = nodes or self.nodes
        wait_for(lambda: converged(nodes), timeout, f"{len(nodes)} nodes on one ring",
                 detail=lambda: "\n".join(f"{p.name}: {p.stats('cluster')}" for p in nodes
                                          if p.server.alive()))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __getitem__(self, i: int) -> NodeProcess:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)
