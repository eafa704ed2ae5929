"""Gossip test fixtures: simulated clusters, and real node processes on their own 127.0.0.x.

The process harness runs `pycache-cluster serve` nodes with gossip on and reads each one's view
over TCP with its `cluster members` command.
"""

from __future__ import annotations

import base64
import signal
import time
from pathlib import Path

import pytest
from helpers.servers import Server, free_port, node_argv, node_env
from helpers.wire import Conn

from pycache_cluster.gossip import config
from pycache_cluster.gossip.reply import parse_members
from pycache_cluster.gossip.sim import Cluster


@pytest.fixture
def sim_cluster():
    """A factory of simulated clusters (local-network timers, clear text unless a keyring)."""

    def make(n: int = 0, *, seed: int = 7, loss: float = 0.0, keyring=None, **cfg) -> Cluster:
        c = Cluster(config.lan(**cfg), seed=seed, loss=loss, keyring=keyring)
        if n:
            c.warm_start(n)
        return c

    return make


@pytest.fixture
def key_file(tmp_path):
    """write(name, *keys) -> path of a key file in the documented format."""

    def write(name: str, *keys: bytes) -> Path:
        path = tmp_path / name
        path.write_text("".join(base64.b64encode(k).decode() + "\n" for k in keys))
        return path

    return write


class NodeProcess:
    """One `pycache-cluster serve` node with gossip on host. Its ports are chosen once, so a
    restart comes back at the same address under the same name."""

    def __init__(self, name: str, host: str, key_file: Path | None, preset: str = "local"):
        self.name = name
        self.host = host
        self.port = free_port(host)
        self.gossip_port = free_port(host, udp=True)
        self.addr = f"{host}:{self.gossip_port}"
        self._flags = ["--node-name", name, "--gossip-port", str(self.gossip_port),
                       "--gossip-preset", preset]
        if key_file:
            self._flags += ["--cluster-key-file", str(key_file)]
        self.join: list[str] = []
        self.server: Server | None = None
        self._logs: list[str] = []

    @property
    def proc(self):
        return self.server.proc

    def start(self, join: list[str] | None = None) -> NodeProcess:
        """Starts (or restarts, with the same seeds) the node; returns once it accepts
        clients (its gossip may still be starting)."""
        if join is not None:
            self.join = join
        if self.server is not None:
            self._logs.append(self.server.output())
        flags = [*self._flags, "--join", ",".join(self.join)] if self.join else self._flags
        self.server = Server(node_argv(self.port, *flags, listen=self.host), self.port,
                             env=node_env(), host=self.host).start()
        return self

    def call(self, request: bytes) -> bytes:
        with Conn(self.port, host=self.host, timeout=5) as c:
            return c.call(request)

    def members(self) -> dict:
        """name -> (host, port, State, incarnation), as this node sees the cluster ({} while
        it is down or not yet gossiping)."""
        if not self.server.alive():
            return {}
        try:
            return parse_members(self.call(b"cluster members\r\n").decode().splitlines())
        except (OSError, ValueError):
            return {}

    def stats(self) -> dict[str, int]:
        out = {}
        for line in self.call(b"stats gossip\r\n").decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = int(parts[2])
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


@pytest.fixture
def nodes():
    """make(name, host, key_file=) -> a NodeProcess, not yet started; all killed at the end."""
    made: list[NodeProcess] = []

    def make(name: str, host: str, *, key_file: Path | None) -> NodeProcess:
        node = NodeProcess(name, host, key_file)
        made.append(node)
        return node

    yield make
    for node in made:
        node.stop()


@pytest.fixture
def wait():
    return wait_for


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail()}")
