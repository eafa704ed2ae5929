"""Fixtures for the store's unit tests: a store on a fake clock."""
import os

import pycache_cluster.store._store as native
import pytest

from pycache_cluster.store import Store

T0 = 1_700_000_000  # a fixed "now" in unix seconds


def pytest_sessionstart(session):
    # The sanitizer run (make test-asan) must really exercise the sanitizer build.
    expected = os.environ.get("PYCACHE_EXPECT_BUILD")
    if expected and not os.path.abspath(native.__file__).startswith(expected):
        raise pytest.UsageError(f"testing {native.__file__}, expected a build under {expected}")


class Clock:
    def __init__(self, store):
        self.store, self.now = store, T0

    def advance(self, seconds):
        self.now += seconds
        self.store.set_time(self.now)


@pytest.fixture
def store():
    return Store(limit_bytes=64 << 20, item_size_max=1 << 20, now=T0)


@pytest.fixture
def clock(store):
    return Clock(store)
