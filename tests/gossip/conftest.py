"""Gossip test fixtures: simulated clusters, and real node processes on their own 127.0.0.x.

The process harness runs `pycache-cluster serve` nodes with gossip on and reads each one's view
over TCP with its `cluster members` command.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from helpers.cluster import NodeProcess, wait_for

from pycache_cluster.gossip import config
from pycache_cluster.gossip.sim import SimCluster


@pytest.fixture
def sim_cluster():
    """A factory of simulated clusters (local-network timers, clear text unless a keyring)."""

    def make(n: int = 0, *, seed: int = 7, loss: float = 0.0, keyring=None, **cfg) -> SimCluster:
        c = SimCluster(config.lan(**cfg), seed=seed, loss=loss, keyring=keyring)
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
