"""The deploy/ monitoring files against real Prometheus: promtool checks the alert rules and
runs their unit tests on synthetic series; a Prometheus server started here scrapes a real
3-node cluster (127.0.0.236-238) with those rules loaded, and every query of the Grafana
dashboard and of the rules answers, on metric names the nodes really export."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from helpers.cluster import Fleet, wait_for
from helpers.metrics import scrape, scrape_text
from helpers.servers import REPO, STARTED, free_port

yaml = pytest.importorskip("yaml")

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
RULES = REPO / "deploy/prometheus/alerts.yml"
DASHBOARD = REPO / "deploy/grafana/pycache-cluster.json"
HOSTS = 236
JOB = "pycache-cluster"
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")


@needs_promtool
def test_rules_pass_promtool_check():
    out = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 8 rules found" in out.stdout


@needs_promtool
def test_rules_pass_their_unit_tests_on_synthetic_series():
    out = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], capture_output=True,
                         text=True, timeout=120, check=False, cwd=RULES.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def dashboard_queries() -> list[str]:
    """Every panel's PromQL with the dashboard's variables as Prometheus would get them."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", ()):
            out.append(target["expr"].replace("$job", JOB).replace("$instance", ".*")
                       .replace("$__rate_interval", "15s"))
    return out


def rule_queries() -> list[str]:
    return [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"\b((?:memcached|pycache|process)_[a-z0-9_]+|up)\b(?=\s*[{\[)])",
                           expr))
    return words


def test_dashboard_is_grafana_json_over_one_datasource_variable():
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 30
    names = {v["name"] for v in doc["templating"]["list"]}
    assert names == {"datasource", "job", "instance"}
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]


@pytest.fixture(scope="module")
def prometheus(request, tmp_path_factory):
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    fleet = Fleet(tmp_path_factory, HOSTS, 3, "--replicas", "2", "--anti-entropy-interval", "1")
    taken = {p for n in fleet for p in (n.port, n.gossip_port)}
    mport = next(p for p in iter(lambda: free_port(f"127.0.0.{HOSTS}"), None) if p not in taken)
    for n in fleet:
        n._flags += ["--metrics-port", str(mport)]
    request.addfinalizer(fleet.stop)
    fleet.start()
    with fleet[0].conn() as c:
        for i in range(50):
            assert c.call(b"set p%d 0 0 1\r\nx\r\n" % i) == b"STORED\r\n"
            c.call(b"get p%d\r\n" % i)
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [
            {"targets": [f"{n.host}:{mport}" for n in fleet]}]}],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(work / "prometheus.log", "wb")  # noqa: SIM115 (the server's whole life)
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(proc)

    def stop():
        proc.terminate()
        proc.wait(30)
    request.addfinalizer(stop)
    api = f"http://127.0.0.1:{port}"

    def ready():
        try:
            with urllib.request.urlopen(f"{api}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False
    wait_for(ready, 60, "prometheus ready", interval=0.2,
             detail=lambda: (work / "prometheus.log").read_text()[-3000:])
    return {"api": api, "fleet": fleet, "mport": mport}


def query(api: str, expr: str) -> dict:
    url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:      # a query Prometheus refuses: say which and why
        raise AssertionError(f"{expr}: {e.read().decode()}") from None


def test_prometheus_scrapes_the_cluster_and_a_query_answers(prometheus):
    api = prometheus["api"]

    def answering() -> bool:
        got = query(api, f'count(memcached_up{{job="{JOB}"}} == 1)')["data"]["result"]
        return bool(got) and got[0]["value"][1] == "3"
    wait_for(answering, 60, "three nodes up in Prometheus", interval=0.5)
    rings = query(api, f'count(count_values("checksum", pycache_ring_checksum{{job="{JOB}"}}))')
    assert rings["data"]["result"][0]["value"][1] == "1"
    hits = query(api, f'sum(memcached_commands_total{{job="{JOB}", command="get", '
                 'status="hit"})')["data"]["result"]
    assert float(hits[0]["value"][1]) >= 50


def test_every_dashboard_and_rule_query_answers_on_exported_names(prometheus):
    api, fleet = prometheus["api"], prometheus["fleet"]
    # Sample names, and the families declared (a gauge by peer with no peer yet has none).
    exported = {name for name, _ in scrape(fleet[0].host, prometheus["mport"])} | {"up"} | \
        set(re.findall(r"^# TYPE (\S+)", scrape_text(fleet[0].host, prometheus["mport"]),
                       re.MULTILINE))
    # Histogram and counter families: the sample names carry the suffixes queried.
    wait_for(lambda: query(api, f'count(rate(memcached_commands_total{{job="{JOB}"}}[15s]))')
             ["data"]["result"], 60, "two scrapes of every node", interval=0.5)
    answered = 0
    for expr in dashboard_queries() + rule_queries():
        missing = metric_names(expr) - exported
        assert not missing, (expr, missing)
        got = query(api, expr)
        assert got["status"] == "success", (expr, got)
        answered += bool(got["data"]["result"])
    # Most panels have data on a live cluster (hints, failures and alerts stay empty).
    assert answered >= len(dashboard_queries()) // 2, answered


def test_the_rules_load_and_stay_quiet_on_a_healthy_cluster(prometheus):
    api = prometheus["api"]
    with urllib.request.urlopen(f"{api}/api/v1/rules", timeout=10) as r:
        groups = json.loads(r.read())["data"]["groups"]
    rules = [rule for g in groups for rule in g["rules"]]
    assert len(rules) == 8 and all(rule["health"] == "ok" for rule in rules), rules
    time.sleep(2)       # a few evaluations
    with urllib.request.urlopen(f"{api}/api/v1/alerts", timeout=10) as r:
        alerts = json.loads(r.read())["data"]["alerts"]
    assert not alerts, alerts
