"""Shared fixtures: our node started through its CLI and the real memcached, per module."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.servers import kill_leftovers, memcached_available, start_memcached, start_node
from helpers.wire import Conn

NEEDS_MEMCACHED = "memcached 1.6.18 binary not installed (apt-get install memcached)"


def _start(kind: str, *extra: str):
    if kind == "memcached":
        if not memcached_available():
            pytest.skip(NEEDS_MEMCACHED)
        return start_memcached(*extra)
    return start_node(*extra)


@pytest.fixture(scope="module")
def pycache(request):
    """Our node, started through the CLI (`pycache-cluster serve`), for one test module."""
    srv = _start("pycache")
    request.addfinalizer(srv.stop)
    return srv


@pytest.fixture(scope="module")
def memcached(request):
    """The real memcached, the oracle, for one test module."""
    srv = _start("memcached")
    request.addfinalizer(srv.stop)
    return srv


@pytest.fixture(scope="module", params=["pycache", "memcached"])
def server(request):
    """Each conversation test runs against our node and against memcached: the same bytes
    must come back from both."""
    srv = _start(request.param)
    request.addfinalizer(srv.stop)
    return srv


@pytest.fixture
def conn(server):
    """A fresh connection to `server`, on an emptied cache."""
    c = Conn(server.port)
    c.expect(b"flush_all\r\n", b"OK\r\n")
    yield c
    c.close()


def pytest_collection_modifyitems(session, config, items):
    # The packaging builds take minutes of compiling: begun now, in the background at the
    # lowest priority, they are done by the time tests/ops/test_packaging.py runs.
    if any(item.path.name == "test_packaging.py" for item in items):
        from helpers import packaging
        packaging.start()


def pytest_sessionfinish(session, exitstatus):
    from helpers import packaging
    packaging.stop()
    left = kill_leftovers()
    if left:
        print(f"\n{left} server process(es) outlived their tests and were killed")
