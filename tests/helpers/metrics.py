"""Scraping a node's /metrics as Prometheus would, parsed by prometheus_client's own parser."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape_text(host: str, port: int, path: str = "/metrics", timeout: float = 10.0) -> str:
    """The exposition text; retried while the endpoint is still binding (it starts just
    after the client port accepts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain")
                return r.read().decode()
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def scrape(host: str, port: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label pairs): value} of every sample."""
    out = {}
    for family in text_string_to_metric_families(scrape_text(host, port)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(host: str, port: int) -> dict[str, object]:
    """{family name: Metric} (counters are named without _total, as the parser does)."""
    return {f.name: f for f in text_string_to_metric_families(scrape_text(host, port))}


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]
