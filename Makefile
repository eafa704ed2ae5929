# pycache_cluster: `make serve` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
PORT ?= 11211
PYTEST_ARGS ?=
ASAN_RUNTIME = $(shell gcc -print-file-name=libasan.so)
ASAN_LIB_DIR = build/asan/lib

.PHONY: serve build test test-deps sysdeps test-asan bench bench-cluster bench-client bench-micro \
	bench-table bench-tls bench-binary bench-hitratio lint clean

serve: build
	$(PYTHON) -m pycache_cluster serve -l 127.0.0.1 -p $(PORT)

# Editable install: builds the extensions in place and puts `pycache-cluster` on PATH.
build:
	$(PIP) install -q "setuptools>=64" wheel "cython>=3.0"
	$(PIP) install -q --no-build-isolation -e .

# Debian packages the differential, client-tool, SASL and benchmark runs need (only as root with apt;
# the tests that need them skip with a reason otherwise).
sysdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  command -v memcached >/dev/null || missing="$$missing memcached"; \
	  command -v memccapable >/dev/null || missing="$$missing libmemcached-tools"; \
	  command -v saslpasswd2 >/dev/null || missing="$$missing sasl2-bin"; \
	  command -v ip >/dev/null || missing="$$missing iproute2"; \
	  command -v iptables >/dev/null || missing="$$missing iptables"; \
	  command -v nc >/dev/null || missing="$$missing netcat-openbsd"; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    case "$$missing" in *" memcached"*) \
	      service memcached stop >/dev/null 2>&1 || true;; \
	    esac; \
	  fi; \
	fi

test-deps: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[test]"
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
	PYCACHE_DEBUG=1 $(PYTHON) setup.py -q build --build-base build/asan --build-lib $(ASAN_LIB_DIR)
	cd build/asan && PYCACHE_EXPECT_BUILD=$(CURDIR)/$(ASAN_LIB_DIR) PYTHONPATH=$(CURDIR)/$(ASAN_LIB_DIR) \
	  LD_PRELOAD=$(ASAN_RUNTIME) ASAN_OPTIONS=$(ASAN_OPTIONS_TEST) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml \
	  $(CURDIR)/tests/unit -m "not slow and not allocator" $(PYTEST_ARGS)
	PYCACHE_NODE_LIB=$(CURDIR)/$(ASAN_LIB_DIR) PYCACHE_DIFF_EXAMPLES=100 PYCACHE_FUZZ_EXAMPLES=50 \
	  $(PYTHON) -m pytest -q tests/integration tests/cluster -m "not python_logic" $(PYTEST_ARGS)

test: test-deps lint test-asan
	$(PYTHON) -m pytest --durations=15 $(PYTEST_ARGS)

# The harness against real memcached 1.6.18 (bench/RESULTS.md keeps the latest tables): the
# native store in process for memory, then A/B throughput and memory against our node.
# BENCH_ARGS passes options to `compare`, e.g. BENCH_ARGS="--seconds 10 --rounds 5".
BENCH_ARGS ?=
bench: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PYTHON) -m bench memory --mode inproc; status=$$?; \
	  $(PYTHON) -m bench compare $(BENCH_ARGS) && exit $$status

# The cluster's figures: ring lookup and balance, forwarded requests' CPU beside a local one
# and memcached's, replicated sets and reads, locks (bench/RESULTS.md, "Cluster",
# "Replication", "Locks").
bench-cluster: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PYTHON) -m bench.ring_bench
	$(PYTHON) -m bench.cluster_bench --conns 32
	$(PYTHON) -m bench.cluster_bench --conns 8
	$(PYTHON) -m bench.replica_bench
	$(PYTHON) -m bench.handover_bench
	$(PYTHON) -m bench.antientropy_bench
	$(PYTHON) -m bench.lock_bench

# What TLS costs per get beside plain TCP (bench/RESULTS.md, "TLS").
bench-tls: build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PYTHON) -m bench.tls_bench

# CPU per binary-protocol get/set beside memcached's binary path (bench/RESULTS.md, "Binary").
bench-binary: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PYTHON) -m bench.binary_bench

# The cluster client's CPU per request beside pymemcache to one node and node-forwarded requests
# (bench/RESULTS.md, "Cluster client").
bench-client: build
	$(PYTHON) -m bench.client_bench --write

bench-micro: test-deps
	$(PIP) install -q --no-build-isolation -e ".[test,bench]"
	$(PYTHON) -m pytest bench/micro --benchmark-only -p no:randomly $(PYTEST_ARGS)

# Miss ratio and bytes per item per workload, beside memcached and libCacheSim's policies
# (bench/hitratio/RESULTS.md).
bench-hitratio: sysdeps build
	$(PIP) install -q --no-build-isolation -e ".[bench]"
	$(PYTHON) -m bench.hitratio

# Why the table chains: our table against linear probing on the same million items.
bench-table:
	mkdir -p build
	gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Icsrc bench/table/table_bench.c \
	  csrc/pc_table.c csrc/pc_item.c csrc/pc_large.c csrc/pc_log.c -ldl -lm -o build/table_bench
	build/table_bench 1000000

lint:
	$(PYTHON) -m ruff check pycache_cluster tests bench

clean:
	rm -rf build *.egg-info linux-x86_64* .pytest_cache
	find pycache_cluster -name '*.so' -delete
