"""The Prometheus endpoint of one node process: scraped over HTTP, parsed with
prometheus_client's parser; its counters follow the traffic sent over the client port."""
from __future__ import annotations

import http.client
import os

import psutil
import pytest
from helpers.metrics import families, scrape, scrape_text, value
from helpers.servers import free_ports, start_node
from helpers.wire import Conn


@pytest.fixture(scope="module")
def exporter(request):
    port, mport = free_ports(2)
    node = start_node("--metrics-port", str(mport), port=port)
    request.addfinalizer(node.stop)
    node.mport = mport
    return node


def test_off_by_default():
    node = start_node()
    try:
        listening = {c.laddr.port for c in psutil.Process(node.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {node.port}
    finally:
        node.stop()


def test_families_and_types(exporter):
    fams = families("127.0.0.1", exporter.mport)
    expect = {
        "memcached_commands": "counter",
        "memcached_current_connections": "gauge",
        "memcached_connections": "counter",
        "memcached_current_bytes": "gauge",
        "memcached_limit_bytes": "gauge",
        "memcached_items_evicted": "counter",
        "memcached_read_bytes": "counter",
        "memcached_process_user_cpu_seconds": "counter",
        "pycache_memory_bytes": "gauge",
        "pycache_command_duration_seconds": "histogram",
        "pycache_build_info": "gauge",
    }
    for name, kind in expect.items():
        assert fams[name].type == kind, name
    # A node without gossip exports no cluster families.
    assert not [n for n in fams if n.startswith(("pycache_ring", "pycache_gossip"))]
    samples = scrape("127.0.0.1", exporter.mport)
    assert value(samples, "memcached_limit_bytes") == 64 * 1024 * 1024


def test_counters_move_with_traffic(exporter):
    before = scrape("127.0.0.1", exporter.mport)
    with Conn(exporter.port) as c:
        assert c.call(b"set mk 0 0 2\r\nhi\r\n") == b"STORED\r\n"
        for _ in range(64):
            c.call(b"get mk\r\n")
        for _ in range(3):
            assert c.call(b"get nokey\r\n") == b"END\r\n"
        assert c.call(b"delete mk\r\n") == b"DELETED\r\n"
        during = scrape("127.0.0.1", exporter.mport)
    after = scrape("127.0.0.1", exporter.mport)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("memcached_commands_total", command="get", status="hit") == 64
    assert moved("memcached_commands_total", command="get", status="miss") == 3
    assert moved("memcached_commands_total", command="set", status="hit") == 1
    assert moved("memcached_commands_total", command="delete", status="hit") == 1
    assert moved("memcached_connections_total") >= 1
    assert moved("memcached_read_bytes_total") > 64 * len(b"get mk\r\n")
    assert moved("memcached_written_bytes_total") > 0
    assert value(during, "memcached_current_connections") >= 1
    # 67 gets at one sample in 16 make at least 4 samples of get.
    hist = value(after, "pycache_command_duration_seconds_count", command="get")
    hist0 = before.get(("pycache_command_duration_seconds_count", (("command", "get"),)), 0)
    assert hist - hist0 >= 4
    assert value(after, "pycache_command_duration_seconds_bucket", command="get",
                 le="+Inf") == hist
    assert value(after, "pycache_command_duration_seconds_sum", command="get") > 0


def test_histogram_buckets_are_cumulative(exporter):
    with Conn(exporter.port) as c:
        for i in range(40):
            c.call(b"set h%d 0 0 1\r\nx\r\n" % i)
    fams = families("127.0.0.1", exporter.mport)
    for sample_set in _by_command(fams["pycache_command_duration_seconds"]).values():
        counts = [v for le, v in sorted(sample_set, key=lambda x: float(x[0]))]
        assert counts == sorted(counts)


def _by_command(family):
    out = {}
    for s in family.samples:
        if s.name.endswith("_bucket"):
            out.setdefault(s.labels["command"], []).append((s.labels["le"], s.value))
    return out


def test_other_paths_and_methods(exporter):
    conn = http.client.HTTPConnection("127.0.0.1", exporter.mport, timeout=5)
    conn.request("GET", "/nothing")
    assert conn.getresponse().status == 404
    conn = http.client.HTTPConnection("127.0.0.1", exporter.mport, timeout=5)
    conn.request("POST", "/metrics", body=b"x")
    assert conn.getresponse().status == 405
    conn = http.client.HTTPConnection("127.0.0.1", exporter.mport, timeout=5)
    conn.request("HEAD", "/metrics")
    r = conn.getresponse()
    assert r.status == 200 and int(r.headers["Content-Length"]) > 1000
    # The node still answers after them.
    assert "memcached_up 1.0" in scrape_text("127.0.0.1", exporter.mport)


def test_env_variable_turns_it_on():
    port, mport = free_ports(2)
    node = start_node(env={**os.environ, "PYCACHE_METRICS_PORT": str(mport)}, port=port)
    try:
        assert value(scrape("127.0.0.1", mport), "memcached_up") == 1
    finally:
        node.stop()
