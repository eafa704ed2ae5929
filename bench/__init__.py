"""Benchmark harness: pycache_cluster against real memcached 1.6.18.

Run with `make bench` (`python -m bench memory --mode inproc`, then `python -m bench compare`);
`python -m bench --help` lists the options. Method and latest tables: bench/RESULTS.md.
"""
