"""The Kubernetes manifest, checked offline against the `kubernetes` client's models (each
document deserialized into its API model and serialized back unchanged: a misspelt or
misplaced field would be dropped), and what the deploy files promise: a disruption budget,
spread, probes that run the node's own health check, a grace period above the leave timeout
with a preStop that starts the leave, a non-root read-only container; compose's cluster key
from a secret and a stop grace period above the leave timeout; the image's healthcheck."""
from __future__ import annotations

import inspect
import json
import re

import pytest
from helpers.servers import REPO

yaml = pytest.importorskip("yaml")
kubernetes = pytest.importorskip("kubernetes")

MANIFEST = REPO / "deploy/k8s/pycache-cluster.yaml"
MODELS = {("v1", "Service"): "V1Service", ("apps/v1", "StatefulSet"): "V1StatefulSet",
          ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget"}
DRAIN = 5           # seconds a stopping node gives its clients' replies (node.py)


def docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


class _Response:
    """What ApiClient.deserialize took before client 34 (it now takes the text itself)."""

    def __init__(self, text: str):
        self.data = text


def _model(doc):
    api, text = kubernetes.client.ApiClient(), json.dumps(doc)
    klass = MODELS[(doc["apiVersion"], doc["kind"])]
    if "content_type" in inspect.signature(api.deserialize).parameters:
        return api.deserialize(text, klass, "application/json")
    return api.deserialize(_Response(text), klass)


def _same(a, b, where="") -> list[str]:
    """Paths where the round trip differs (ports written as ints may come back as ints)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in set(a) | set(b):
            out += _same(a.get(key), b.get(key), f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for x, y, i in zip(a, b, range(len(a)), strict=True)
                for p in _same(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


@pytest.mark.parametrize("index", range(4))
def test_each_document_is_its_api_model_exactly(index):
    doc = docs()[index]
    model = _model(doc)
    back = kubernetes.client.ApiClient().sanitize_for_serialization(model)
    assert not _same(doc, back), _same(doc, back)


def _sts() -> dict:
    return next(d for d in docs() if d["kind"] == "StatefulSet")


def _container() -> dict:
    return _sts()["spec"]["template"]["spec"]["containers"][0]


def _env() -> dict[str, str]:
    return {e["name"]: e.get("value") for e in _container()["env"]}


def test_a_disruption_budget_lets_one_node_go_at_a_time():
    pdb = next(d for d in docs() if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == \
        _sts()["spec"]["template"]["metadata"]["labels"]


def test_owners_spread_over_machines():
    spec = _sts()["spec"]["template"]["spec"]
    terms = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert spec["topologySpreadConstraints"][0]["maxSkew"] == 1


def test_probes_run_the_nodes_own_health_check():
    c = _container()
    assert c["startupProbe"]["exec"]["command"] == ["pycache-cluster", "health"]
    assert c["livenessProbe"]["exec"]["command"] == ["pycache-cluster", "health"]
    assert c["readinessProbe"]["exec"]["command"] == ["pycache-cluster", "health", "--ready"]


def test_grace_period_outlasts_the_leave_that_prestop_starts():
    c = _container()
    leave_timeout = float(_env()["PYCACHE_LEAVE_TIMEOUT"])
    grace = _sts()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > leave_timeout + DRAIN
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:3] == ["pycache-cluster", "leave", "--wait"]
    # The wait must not outlast the grace period, and the node must take the leave (-A).
    assert leave_timeout < float(command[command.index("--timeout") + 1]) <= grace
    assert _env()["PYCACHE_ENABLE_SHUTDOWN"] == "1"


def test_the_container_runs_as_the_images_user_on_a_read_only_root():
    spec = _sts()["spec"]["template"]["spec"]
    pod, c = spec["securityContext"], _container()["securityContext"]
    assert pod["runAsNonRoot"] is True
    uid = re.search(r"^USER (\d+):(\d+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid.group(1)), int(uid.group(2)))
    assert c["readOnlyRootFilesystem"] is True and c["allowPrivilegeEscalation"] is False
    assert c["capabilities"]["drop"] == ["ALL"]


def test_the_manifest_says_where_the_image_comes_from():
    text = MANIFEST.read_text()
    assert "Image registry: no image is published" in text
    assert _container()["image"].startswith("registry.example.com/")


def test_compose_takes_the_cluster_key_from_a_secret_and_outlasts_the_leave():
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    node = doc["x-node"]
    assert node["secrets"] == ["cluster_key"] and "cluster_key" in doc["secrets"]
    assert node["environment"]["PYCACHE_CLUSTER_KEY_FILE"] == "/run/secrets/cluster_key"
    grace = int(node["stop_grace_period"].rstrip("s"))
    assert grace > float(node["environment"]["PYCACHE_LEAVE_TIMEOUT"]) + DRAIN


def test_the_images_healthcheck_is_the_nodes_own():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r'^HEALTHCHECK .*CMD \["pycache-cluster", "health"\]$', text, re.MULTILINE)
