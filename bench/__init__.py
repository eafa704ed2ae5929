"""Benchmark harness: pycache_cluster against real memcached 1.6.18 (see bench/README section in RESULTS.md).

Run with `make bench` (`python -m bench compare`) or `python -m bench memory --mode inproc`.
"""
