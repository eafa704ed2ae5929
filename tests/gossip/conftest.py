"""Gossip test fixtures: simulated clusters, and real member processes on their own 127.0.0.x.

The process harness reads each member's view through `members_of()`; today that is the
`cluster members` text the stand-alone agent writes to a file, later it can be the node's own
`cluster members` command: only `AgentProcess.start` and `AgentProcess.members` change.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pycache_cluster.gossip import config
from pycache_cluster.gossip.reply import parse_members
from pycache_cluster.gossip.sim import Cluster

REPO = Path(__file__).resolve().parents[2]
GOSSIP_PORT = 17946


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


class AgentProcess:
    """One gossip member process, `python -m pycache_cluster.gossip`."""

    def __init__(self, name: str, host: str, workdir: Path, key_file: Path | None,
                 join: list[str]):
        self.name = name
        self.host = host
        self.addr = f"{host}:{GOSSIP_PORT}"
        self._members_file = workdir / f"{name}.members"
        self._log = workdir / f"{name}.log"
        self._key_file = key_file
        self._join = join
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._members_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pycache_cluster.gossip", "--node-name", self.name,
               "--bind", self.host, "--gossip-port", str(GOSSIP_PORT), "--preset", "local",
               "--members-file", str(self._members_file)]
        if self._join:
            cmd += ["--join", ",".join(self._join)]
        if self._key_file:
            cmd += ["--cluster-key-file", str(self._key_file)]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=log)

    def members(self) -> dict:
        """name -> (host, port, State, incarnation), as this member sees the cluster."""
        try:
            return parse_members(self._members_file.read_text().splitlines())
        except FileNotFoundError:
            return {}

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)

    def log_tail(self) -> str:
        try:
            return self._log.read_text()[-3000:]
        except FileNotFoundError:
            return ""


@pytest.fixture
def agents(tmp_path):
    started: list[AgentProcess] = []

    def spawn(name: str, host: str, *, key_file: Path | None, join: list[str]) -> AgentProcess:
        agent = AgentProcess(name, host, tmp_path, key_file, join)
        agent.start()
        started.append(agent)
        return agent

    yield spawn
    for agent in started:
        if agent.proc and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(10)


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
