# pycache_cluster: `make serve` and `make test` do all set-up on a fresh machine.
# PYTHON is the interpreter given; PY the one everything installs into and runs with: PYTHON
# itself, or, when PYTHON is externally managed (PEP 668: Debian's and Ubuntu's own
# /usr/bin/python3 refuse `pip install`) and not already a virtual environment, .venv made
# from it.
PYTHON ?= python3
VENV ?= .venv
PY := $(shell $(PYTHON) -c "import os, sys, sysconfig; \
  managed = os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')); \
  print('$(VENV)/bin/python' if managed and sys.prefix == sys.base_prefix else sys.executable)")
PIP := $(PY) -m pip
PORT ?= 11211
PYTEST_ARGS ?=
ASAN_RUNTIME = $(shell gcc -print-file-name=libasan.so)
ASAN_LIB_DIR = build/asan/lib

.PHONY: serve build python test test-deps sysdeps test-asan bench bench-cluster bench-client \
	bench-micro bench-table bench-tls bench-binary bench-hitratio docs dist lint clean

serve: build
	$(PY) -m pycache_cluster serve -l 127.0.0.1 -p $(PORT)

# The interpreter to install into: made as .venv when PYTHON is externally managed.
python: $(PY)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || { echo "make: cannot create $(VENV) with $(PYTHON):" \
	  "install its venv module (Debian, Ubuntu: apt-get install python3-venv)" >&2; exit 1; }

# Editable install: builds the extensions in place and puts `pycache-cluster` on PATH (in
# .venv/bin when .venv is used).
build: python
	$(PIP) install -q "setuptools>=64" wheel "cython>=3.0"
	$(PIP) install -q --no-build-isolation -e .

# Debian packages the differential, client-tool, SASL, packaging (ccache; Debian's
# own Python, externally managed, for `make serve`), Prometheus (promtool and the server) and
# benchmark runs need (only as root with apt; the tests that need them skip with a reason
# otherwise). Services the packages start are stopped: the tests start their own.
sysdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  command -v memcached >/dev/null || missing="$$missing memcached"; \
	  command -v memccapable >/dev/null || missing="$$missing libmemcached-tools"; \
	  command -v saslpasswd2 >/dev/null || missing="$$missing sasl2-bin"; \
	  command -v ip >/dev/null || missing="$$missing iproute2"; \
	  command -v iptables >/dev/null || missing="$$missing iptables"; \
	  command -v nc >/dev/null || missing="$$missing netcat-openbsd"; \
	  command -v promtool >/dev/null || missing="$$missing prometheus"; \
	  command -v ccache >/dev/null || missing="$$missing ccache"; \
	  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import ensurepip" 2>/dev/null || \
	    missing="$$missing python3-venv"; \
	  ls /usr/include/python3*/Python.h >/dev/null 2>&1 || missing="$$missing python3-dev"; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing; \
	    for service in memcached prometheus; do \
	      service $$service stop >/dev/null 2>&1 || true; \
	    done; \
	  fi; \
	fi

# The [test] extras alone: `build` already installed the package (a second editable install
# would compile every extension again).
test-deps: sysdeps build
	mkdir -p build
	$(PY) -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))\
	  ['project']['optional-dependencies']['test']))" > build/test-requirements.txt
	$(PIP) install -q -r build/test-requirements.txt
	-$(PIP) install -q pylibmc 2>/dev/null

# The native code under AddressSanitizer + UBSan, built beside (not over) the release build:
# the store's tests load it in process, and the protocol tests run their nodes on it, with
# fewer generated examples than the release run (which runs them all): this run is for the
# memory errors the native paths could make, not for more of the same semantics.
# detect_odr_violation=1: each extension links its own copy of the core, and pc_large's shared
# state is meant to exist once per copy (same size, one adopted at run time); ASan still
# reports two definitions of different sizes.
ASAN_OPTIONS_TEST = detect_leaks=0:abort_on_error=1:detect_odr_violation=1
test-asan: test-deps
	rm -rf build/asan
	PYCACHE_DEBUG=1 $(PY) setup.py -q build --build-base build/asan --build-lib $(ASAN_LIB_DIR)
	cd build/asan && PYCACHE_EXPECT_BUILD=$(CURDIR)/$(ASAN_LIB_DIR) PYTHONPATH=$(CURDIR)/$(ASAN_LIB_DIR) \
	  LD_PRELOAD=$(ASAN_RUNTIME) ASAN_OPTIONS=$(ASAN_OPTIONS_TEST) \
	  $(PY) -m pytest -q -p no:cacheprovider --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml \
	  $(CURDIR)/tests/unit -m "not slow and not allocator" $(PYTEST_ARGS)
	PYCACHE_NODE_LIB=$(CURDIR)/$(ASAN_LIB_DIR) PYCACHE_DIFF_EXAMPLES=100 PYCACHE_FUZZ_EXAMPLES=50 \
	  PYCACHE_FUZZ_SEQUENCES=400 \
	  $(PY) -m pytest -q --durations=10 tests/integration tests/cluster \
	  -m "not python_logic and not choreography" $(PYTEST_ARGS)

test: test-deps lint docs test-asan
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS)

# The documentation site (docs/, mkdocs.yml); --strict: a broken link or a page left out of
# the navigation fails the build.
docs: test-deps
	$(PY) -m mkdocs build --strict --site-dir build/site

# An sdist and a wheel (the wheel built from the sdist), then the wheel repaired by auditwheel
# for the manylinux tag this machine's glibc allows: dist/ and dist/wheelhouse/.
dist: python
	$(PIP) install -q build auditwheel
	rm -rf dist
	$(PY) -m build --outdir dist .
	PATH=$(dir $(PY)):$$PATH $(PY) -m auditwheel repair --wheel-dir dist/wheelhouse dist/*.whl

# The harness against real memcached 1.6.18 (bench/RESULTS.md keeps the latest tables): the
# native store in process for memory, then A/B throughput and memory against our node.
# BENCH_ARGS passes options to `compare`, e.g. BENCH_ARGS="--seconds 10 --rounds 5".
BENCH_ARGS ?=
bench: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PY) -m bench memory --mode inproc; status=$$?; \
	  $(PY) -m bench compare $(BENCH_ARGS) && exit $$status

# The cluster's figures: ring lookup and balance, forwarded requests' CPU beside a local one
# and memcached's, replicated sets and reads, locks (bench/RESULTS.md, "Cluster",
# "Replication", "Locks").
bench-cluster: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PY) -m bench.ring_bench
	$(PY) -m bench.cluster_bench --conns 32
	$(PY) -m bench.cluster_bench --conns 8
	$(PY) -m bench.replica_bench
	$(PY) -m bench.handover_bench
	$(PY) -m bench.antientropy_bench
	$(PY) -m bench.lock_bench

# What TLS costs per get beside plain TCP (bench/RESULTS.md, "TLS").
bench-tls: build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PY) -m bench.tls_bench

# CPU per binary-protocol get/set beside memcached's binary path (bench/RESULTS.md, "Binary").
bench-binary: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PY) -m bench.binary_bench

# The cluster client's CPU per request beside pymemcache to one node and node-forwarded requests
# (bench/RESULTS.md, "Cluster client").
bench-client: build
	$(PY) -m bench.client_bench --write

bench-micro: test-deps
	$(PIP) install -q --no-build-isolation -e ".[test,bench]"
	$(PY) -m pytest bench/micro --benchmark-only -p no:randomly $(PYTEST_ARGS)

# Miss ratio and bytes per item per workload, beside memcached and libCacheSim's policies
# (bench/hitratio/RESULTS.md).
bench-hitratio: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PY) -m bench.hitratio

# Why the table chains: our table against linear probing on the same million items.
bench-table:
	mkdir -p build
	gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Icsrc bench/table/table_bench.c \
	  csrc/pc_table.c csrc/pc_item.c csrc/pc_large.c csrc/pc_log.c -ldl -lm -o build/table_bench
	build/table_bench 1000000

lint:
	$(PY) -m ruff check pycache_cluster tests bench

clean:
	rm -rf build dist *.egg-info linux-x86_64* .pytest_cache
	find pycache_cluster -name '*.so' -delete
