"""The line a node logs once it serves: address, memory limit, cluster settings, version; one
line at the default verbosity, details with -v."""
from __future__ import annotations

import re

from helpers.cluster import wait_for
from helpers.servers import free_ports, start_node

from pycache_cluster import __version__


def startup_lines(node) -> list[str]:
    wait_for(lambda: "pycache_cluster.startup" in node.output(), 20, "the start-up line",
             detail=node.output)
    return [line for line in node.output().splitlines() if "pycache_cluster.startup" in line]


def test_one_line_by_default():
    node = start_node("-m", "48", "-I", "2m", "-c", "500")
    try:
        (line,) = startup_lines(node)
        assert f"pycache-cluster {__version__} (memcached 1.6.18 protocol)" in line
        assert f"serving on tcp://127.0.0.1:{node.port}," in line
        assert "memory 48 MiB, max item 2 MiB, 500 connections" in line
        assert "alone (gossip off)" in line
        assert "metrics" not in line
        # Nothing else is logged at the default verbosity.
        assert node.output().strip() == line.strip()
    finally:
        node.stop()


def test_cluster_settings_and_metrics():
    port, metrics, gossip = free_ports(3, udp=True)
    node = start_node("--gossip-port", str(gossip), "--node-name", "boot1",
                      "--replicas", "3", "--write-quorum", "2", "--read-quorum", "2",
                      "--gossip-preset", "local", "--metrics-port", str(metrics), port=port)
    try:
        (line,) = startup_lines(node)
        assert f"member boot1 gossiping on 127.0.0.1:{gossip} (local, clear text)" in line
        assert "N=3 W=2 R=2" in line
        assert f"metrics http://127.0.0.1:{metrics}/metrics" in line
    finally:
        node.stop()


def test_verbose_says_more():
    port, gossip = free_ports(2, udp=True)
    node = start_node("-v", "--gossip-port", str(gossip), "--vnodes", "300", port=port)
    try:
        lines = startup_lines(node)
        assert len(lines) > 1
        text = "\n".join(lines)
        assert re.search(r"process \d+, Python 3\.\d+\.\d+, uvloop \d", text)
        assert "vnodes 300" in text and "seeds (none: a new cluster)" in text
    finally:
        node.stop()
