"""Nodes in network namespaces of their own on a bridge the test creates, so that links
between them can be cut (both ways or one), made lossy, and healed with iptables inside each
namespace. The test process reaches every node through the bridge's address, which no rule
touches. Everything made here is removed by close(), also after a failure."""
from __future__ import annotations

import os
import shutil
import subprocess
from itertools import count

from helpers.cluster import NodeProcess

CLIENT_PORT, GOSSIP_PORT = 11211, 7946
_made = count()


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 iptables)"
    probe = f"pcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], check=False, capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    try:
        rule = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-S"],
                              check=False, capture_output=True, text=True)
        if rule.returncode != 0:
            return f"iptables does not work in a namespace: {rule.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], check=False, capture_output=True)
    return None


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


class NsNode(NodeProcess):
    """A node in its own namespace: fixed ports (the namespace is its own), its address on
    the bridge."""

    def __init__(self, name: str, netns: str, host: str, key_file, extra: tuple[str, ...]):
        self.netns = netns
        self._ports = (CLIENT_PORT, GOSSIP_PORT)
        super().__init__(name, host, key_file, extra=extra)

    def _pick_ports(self) -> tuple[int, int]:
        return self._ports

    def _argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]


class NetnsFleet:
    """n nodes, each in a namespace with a veth to one bridge; a subnet of its own per fleet."""

    def __init__(self, key_file, n: int, *extra: str):
        made = next(_made)
        tag = f"{os.getpid() % 1000}x{made}"
        self.bridge = f"pcb{tag}"
        net = 100 + (os.getpid() + made) % 100
        self.gateway = f"10.{net}.0.1"
        self.namespaces: list[str] = []
        self.veths: list[str] = []
        self.key_file = key_file
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            self.nodes = []
            for i in range(n):
                ns, veth, host = f"pcn{tag}n{i}", f"pcv{tag}n{i}", f"10.{net}.0.{10 + i}"
                sh("ip", "netns", "add", ns)
                self.namespaces.append(ns)
                sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                   "netns", ns)
                self.veths.append(veth)
                sh("ip", "link", "set", veth, "master", self.bridge)
                sh("ip", "link", "set", veth, "up")
                sh("ip", "-n", ns, "addr", "add", f"{host}/24", "dev", "eth0")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                self.nodes.append(NsNode(f"p{i}", ns, host, key_file, extra))
        except BaseException:
            self.close()
            raise

    def start(self) -> NetnsFleet:
        seeds = [self.nodes[0].addr]
        for node in self.nodes:
            node.start(join=seeds if node is not self.nodes[0] else [])
        return self

    def _iptables(self, i: int, *rule: str) -> None:
        sh("ip", "netns", "exec", self.namespaces[i], "iptables", *rule)

    def cut(self, a: list[int], b: list[int]) -> None:
        """No packet between a node of `a` and a node of `b`, either way."""
        for i in a:
            for j in b:
                self.one_way(i, j)
                self.one_way(j, i)

    def one_way(self, src: int, dst: int) -> None:
        """Packets from src to dst are dropped (dst's to src still arrive)."""
        self._iptables(src, "-A", "OUTPUT", "-d", self.nodes[dst].host, "-j", "DROP")

    def lossy(self, i: int, probability: float) -> None:
        """Node i's packets to the other nodes are dropped with this probability."""
        self._iptables(i, "-A", "OUTPUT", "!", "-d", self.gateway, "-m", "statistic",
                       "--mode", "random", "--probability", str(probability), "-j", "DROP")

    def heal(self) -> None:
        for i in range(len(self.namespaces)):
            self._iptables(i, "-F", "OUTPUT")

    def stop(self) -> None:
        for node in getattr(self, "nodes", []):
            node.stop()

    def close(self) -> None:
        self.stop()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
        self.namespaces.clear()

    def __getitem__(self, i: int) -> NsNode:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)
