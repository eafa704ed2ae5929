"""The Prometheus endpoint of one node process: scraped over HTTP, parsed with
prometheus_client's parser; its counters follow the traffic sent over the client port."""
from __future__ import annotations

import http.client
import os
import re
import time

import psutil
import pytest
from helpers.metrics import families, scrape, scrape_text, value
from helpers.servers import free_ports, start_node
from helpers.wire import Conn

# Decided in Python (the metrics endpoint): the sanitizer run leaves it out (pyproject.toml).
pytestmark = pytest.mark.python_logic


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
        # One pipeline: a fence (mn) after each get would put every sampled request on the
        # same one of the two (one request in 16 is timed).
        assert c.call(b"get mk\r\n" * 64) == b"VALUE mk 0 2\r\nhi\r\nEND\r\n" * 64
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
    # 64 gets in a row at one sample in 16 make at least 4 samples of get.
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


def _exporter_commands(stats: dict[str, int]) -> dict[tuple[str, str], float]:
    """memcached_exporter's memcached_commands_total from memcached's own `stats`
    (pkg/exporter/exporter.go): hits and misses per command, cas badval, flush, and set
    without the cas memcached counts in cmd_set."""
    out = {}
    for op in ("get", "delete", "incr", "decr", "cas", "touch"):
        out[(op, "hit")] = stats[f"{op}_hits"]
        out[(op, "miss")] = stats[f"{op}_misses"]
    out[("cas", "badval")] = stats["cas_badval"]
    out[("flush", "hit")] = stats["cmd_flush"]
    out[("set", "hit")] = stats["cmd_set"] - stats["cas_misses"] - stats["cas_hits"] \
        - stats["cas_badval"]
    return out


TRAFFIC = (b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nadd a 0 0 1\r\n3\r\ngets a\r\n"
           b"cas a 0 0 1 999999\r\nx\r\ncas nokey 0 0 1 1\r\nx\r\nincr nokey 1\r\n"
           b"set n 0 0 1\r\n5\r\nincr n 2\r\ndecr n 1\r\ntouch n 10\r\ntouch nokey 10\r\n"
           b"get a b nokey\r\ndelete b\r\ndelete b\r\nflush_all 100\r\n")


def test_command_counts_are_memcached_exporters_for_the_same_traffic(exporter, memcached):
    def stats_of(port):
        with Conn(port) as c:
            return {k.decode(): int(v) for k, v in
                    re.findall(rb"STAT (\w+) (\d+)\r\n", c.call(b"stats\r\n"))}

    before_ours = scrape("127.0.0.1", exporter.mport)
    before_theirs = _exporter_commands(stats_of(memcached.port))
    for port in (exporter.port, memcached.port):
        with Conn(port) as c:
            c.call(TRAFFIC)
            # A cas that wins needs the key's own CAS unique.
            cas = int(c.call(b"gets n\r\n").split()[4])
            assert c.call(b"cas n 0 0 1 %d\r\n7\r\n" % cas) == b"STORED\r\n"
            c.call(b"flush_all\r\n")
    theirs = _exporter_commands(stats_of(memcached.port))
    after_ours = scrape("127.0.0.1", exporter.mport)
    for (command, status), total in theirs.items():
        ours = value(after_ours, "memcached_commands_total", command=command, status=status) \
            - value(before_ours, "memcached_commands_total", command=command, status=status)
        assert ours == total - before_theirs[(command, status)], (command, status)
    assert value(after_ours, "memcached_commands_total", command="set", status="hit") - \
        value(before_ours, "memcached_commands_total", command="set", status="hit") == 4


def test_memcached_exporter_names_and_process_metrics(exporter):
    with Conn(exporter.port) as c:
        c.call(b"set big 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n")
    fams = families("127.0.0.1", exporter.mport)
    samples = scrape("127.0.0.1", exporter.mport)
    for name in ("memcached_item_too_large", "memcached_item_no_memory",
                 "memcached_lru_crawler_reclaimed", "memcached_lru_crawler_moves_to_cold",
                 "memcached_connections_rejected", "memcached_items_reclaimed"):
        assert fams[name].type == "counter", name
    assert value(samples, "memcached_item_too_large_total") >= 1
    assert not [n for n in fams if n.startswith(("pycache_store_", "pycache_lru_moves"))]
    assert value(samples, "memcached_version", version="1.6.18") == 1
    assert value(samples, "memcached_uptime_seconds") >= 0
    assert abs(value(samples, "memcached_time_seconds") - time.time()) < 5
    # prometheus_client's process collector, about the node's own process.
    proc = psutil.Process(exporter.pid)
    assert value(samples, "process_open_fds") >= 3
    rss = value(samples, "process_resident_memory_bytes")
    assert 0.5 < rss / proc.memory_info().rss < 2
    assert abs(value(samples, "process_start_time_seconds") - proc.create_time()) < 2
    assert value(samples, "process_cpu_seconds_total") > 0


def own_the_one_connection(port: int) -> Conn:
    """The node's one connection (-c 1), once the scrape's probe has given it back: until
    the node has seen the probe close, it refuses another with memcached's error."""
    deadline = time.monotonic() + 10
    while True:
        c = Conn(port)
        try:
            if c.call(b"version\r\n").startswith(b"VERSION"):
                return c
        except OSError:
            pass
        c.close()
        assert time.monotonic() < deadline, "the probe's connection was never given back"
        time.sleep(0.05)


def test_up_is_a_real_probe_of_the_client_port():
    """memcached_up is 0 while the node refuses its own probe (its one connection taken),
    1 again once it answers."""
    port, mport = free_ports(2)
    node = start_node("-c", "1", "--metrics-port", str(mport), port=port)
    try:
        assert value(scrape("127.0.0.1", mport), "memcached_up") == 1
        with own_the_one_connection(node.port) as c:
            c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
            assert value(scrape("127.0.0.1", mport), "memcached_up") == 0
        deadline = time.monotonic() + 10
        while value(scrape("127.0.0.1", mport), "memcached_up") != 1:
            assert time.monotonic() < deadline
    finally:
        node.stop()
