"""The fleet files (Dockerfile, docker-compose.yml, deploy/k8s) against the node they run:
every PYCACHE_* variable they set is one the CLI reads and parses, their ports agree, and a
node started with compose's settings (its own address for the seed) exports metrics on the
port the files publish. Containers themselves are not started here (docs/operations.md)."""
from __future__ import annotations

import base64
import os
import re

import pytest
from helpers.cluster import wait_for
from helpers.metrics import scrape, value
from helpers.servers import REPO, free_ports, start_node

from pycache_cluster.cli import ENV, build_parser, config_from_args

yaml = pytest.importorskip("yaml")

METRICS_PORT = "9150"


def compose_env() -> dict[str, str]:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return {k: str(v) for k, v in doc["x-node"]["environment"].items()}


def k8s_docs() -> list[dict]:
    return list(yaml.safe_load_all((REPO / "deploy/k8s/pycache-cluster.yaml").read_text()))


def k8s_container() -> dict:
    sts = next(d for d in k8s_docs() if d["kind"] == "StatefulSet")
    return sts["spec"]["template"]["spec"]["containers"][0]


def dockerfile_env() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text()
    return dict(re.findall(r"^ENV (PYCACHE_\w+)=(\S+)", text, re.MULTILINE))


def test_every_variable_is_one_the_cli_reads():
    known = set(ENV.values())
    names = set(compose_env()) | set(dockerfile_env())
    names |= {e["name"] for e in k8s_container()["env"]}
    assert names <= known, names - known


def test_the_settings_parse_and_validate(monkeypatch):
    env = {**dockerfile_env(), **compose_env(), "PYCACHE_NODE_NAME": "node1"}
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    cfg = config_from_args(build_parser().parse_args(["serve"]))
    cfg.validate()
    assert cfg.listen == "0.0.0.0" and cfg.metrics_port == int(METRICS_PORT)
    assert cfg.gossip_port == 7946 and cfg.seeds == ["node1:7946"]


def test_ports_agree():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"^EXPOSE .*\b{METRICS_PORT}\b", dockerfile, re.MULTILINE)
    assert compose_env()["PYCACHE_METRICS_PORT"] == METRICS_PORT
    c = k8s_container()
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PYCACHE_METRICS_PORT"] == METRICS_PORT
    assert {"name": "metrics", "containerPort": int(METRICS_PORT)} in c["ports"]
    svc = next(d for d in k8s_docs() if d["kind"] == "Service")
    assert {"name": "metrics", "port": int(METRICS_PORT)} in svc["spec"]["ports"]
    sts = next(d for d in k8s_docs() if d["kind"] == "StatefulSet")
    notes = sts["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/port"] == METRICS_PORT


def test_a_node_with_compose_settings_exports_metrics(tmp_path):
    port, mport, gport = free_ports(3, udp=True)
    # The secret compose mounts at /run/secrets/cluster_key, here a file of the same kind.
    key = tmp_path / "cluster_key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    env = {**os.environ, **compose_env(), "PYCACHE_LISTEN": "127.0.0.1",
           "PYCACHE_METRICS_PORT": str(mport), "PYCACHE_NODE_NAME": "node1",
           "PYCACHE_CLUSTER_KEY_FILE": str(key)}
    # Gossip on a free port, no seed: the one-node cluster compose's node1 starts as.
    env.update(PYCACHE_GOSSIP_PORT=str(gport), PYCACHE_JOIN="")
    node = start_node(env=env, port=port)
    try:
        # The endpoint starts before gossip does: wait for the member to count itself.
        wait_for(lambda: scrape("127.0.0.1", mport).get(
            ("pycache_gossip_members", (("state", "alive"),))) == 1, 20, "gossip's families")
        samples = scrape("127.0.0.1", mport)
        assert value(samples, "memcached_limit_bytes") == int(env["PYCACHE_MEMORY_LIMIT"]) << 20
    finally:
        node.stop()
