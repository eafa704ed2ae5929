"""memcached's item dumps and slab-shaped stats against memcached 1.6.18: lru_crawler
metadump and enable/disable, stats cachedump, stats sizes, stats extstore, the per-class
fields of stats slabs and stats items. Times and CAS values are normalised, and lines are
compared as sets where the walk order is the store's (LRU order in memcached)."""
import re
import time

import pytest
from helpers.cluster import wait_for
from helpers.servers import memcached_available, start_memcached, start_node
from helpers.wire import Conn


@pytest.fixture
def fresh(request):
    """Both servers new, so that no earlier item is in memcached's classes or LRUs."""
    if not memcached_available():
        pytest.skip("memcached 1.6.18 binary not installed")
    servers = (start_node(), start_memcached())
    for srv in servers:
        request.addfinalizer(srv.stop)
    return servers


def both(servers, data: bytes) -> list[bytes]:
    out = []
    for srv in servers:
        with Conn(srv.port) as c:
            out.append(c.call(data))
    return out


def ask(servers, data: bytes, until: bytes = b"END\r\n") -> list[bytes]:
    """Sends one dump request and reads its reply. Not fenced with mn: memcached hands the
    connection to its crawler thread for a metadump and answers what follows only after."""
    out = []
    for srv in servers:
        with Conn(srv.port) as c:
            c.send(data)
            out.append(c.read_until(until))
    return out


ITEMS = (b"set a:1 0 0 1\r\nx\r\nset b%20 5 100 3\r\nxyz\r\nset big 0 0 500\r\n" + b"v" * 500 +
         b"\r\nset huge 7 2000000000 5000\r\n" + b"w" * 5000 + b"\r\nget a:1 big\r\n")
_TIMES = re.compile(rb"(exp|la)=(\d+)")
_CAS = re.compile(rb"cas=\d+")


def _meta(reply: bytes) -> list[bytes]:
    """metadump lines, sorted, times as -1 or <t>, CAS as <cas>."""
    body, end = reply[:-5], reply[-5:]
    assert end == b"END\r\n"
    lines = [_CAS.sub(b"cas=<cas>", _TIMES.sub(rb"\1=<t>", line))
             for line in body.split(b"\n") if line]
    return sorted(lines)


def test_metadump(fresh):
    both(fresh, ITEMS)
    for what in (b"all", b"hash", b"1", b"1,4", b"12", b"4,12,14"):
        ours, theirs = ask(fresh, b"lru_crawler metadump " + what + b"\r\n")
        assert _meta(ours) == _meta(theirs), what
    assert b"key=b%2520 exp=<t> la=<t> cas=<cas> fetch=no cls=1 size=70" in \
        _meta(ask(fresh, b"lru_crawler metadump all\r\n")[0])
    for bad in (b"lru_crawler metadump 99\r\n", b"lru_crawler metadump x\r\n",
                b"lru_crawler metadump 1,x\r\n", b"lru_crawler metadump\r\n",
                b"lru_crawler metadump all extra\r\n"):
        ours, theirs = ask(fresh, bad, b"\r\n")
        assert ours == theirs, bad


def test_crawler_enable_disable(fresh):
    # One command a round trip: memcached starts and stops its crawler thread meanwhile, and
    # pipelined behind a disable it answers whatever the thread's state is at that moment.
    steps = [b"lru_crawler enable\r\n", b"lru_crawler disable\r\n", b"lru_crawler disable\r\n",
             b"lru_crawler metadump all\r\n", b"lru_crawler crawl all\r\n",
             b"lru_crawler enable\r\n", b"lru_crawler enable\r\n"]
    got = []
    for step in steps:
        got.append(ask(fresh, step, b"\r\n"))
        time.sleep(0.1)
    assert [ours for ours, _ in got] == [theirs for _, theirs in got]
    assert [ours for ours, _ in got][:4] == [
        b"ERROR failed to start lru crawler thread\r\n", b"OK\r\n", b"OK\r\n",
        b"CLIENT_ERROR lru crawler disabled\r\n"]


def _cachedump(reply: bytes) -> list[bytes]:
    return sorted(re.sub(rb"; \d{6,} s\]", b"; <t> s]", line)
                  for line in reply.split(b"\r\n") if line)


def _all_cold(srv) -> bool:
    st = _stats(both([srv], b"stats items\r\n")[0])
    return all(st[k] == st[k.replace("number_cold", "number")]
               for k in st if k.endswith("number_cold"))


def test_cachedump(fresh):
    # memcached dumps a class's COLD LRU only, where its maintainer moves new items within
    # seconds; here every item of the class is listed.
    both(fresh, ITEMS)
    wait_for(lambda: _all_cold(fresh[1]), 10, "memcached's items in COLD")
    for cls in (b"1", b"4", b"12", b"2", b"63"):
        ours, theirs = both(fresh, b"stats cachedump " + cls + b" 0\r\n")
        assert _cachedump(ours) == _cachedump(theirs), cls
    ours, theirs = both(fresh, b"stats cachedump 1 1\r\n")
    assert len(_cachedump(ours)) == len(_cachedump(theirs)) == 2     # one ITEM, END
    for bad in (b"stats cachedump 64 0\r\n", b"stats cachedump 1\r\n", b"stats cachedump x 1\r\n",
                b"stats cachedump 1 -1\r\n", b"stats cachedump 1 x\r\n"):
        ours, theirs = both(fresh, bad)
        assert ours == theirs, bad


def test_sizes_and_extstore(fresh):
    ours, theirs = both(fresh, b"stats sizes\r\nstats sizes_enable\r\n" + ITEMS +
                        b"stats sizes\r\nstats sizes_disable\r\nstats sizes\r\nstats extstore\r\n")
    assert ours == theirs
    assert b"STAT sizes_status enabled\r\n" in ours and b"STAT 64 1\r\n" in ours


def _stats(reply: bytes) -> dict[str, str]:
    return {line.split()[1].decode(): line.split()[2].decode()
            for line in reply.split(b"\r\n") if line.startswith(b"STAT ")}


SLAB_FIELDS = ("chunk_size", "chunks_per_page", "total_pages", "total_chunks", "used_chunks",
               "free_chunks", "free_chunks_end")


def test_slabs_and_items_per_class(fresh):
    both(fresh, ITEMS)
    (ours, theirs) = (_stats(r) for r in both(fresh, b"stats slabs\r\n"))
    assert ours.keys() == theirs.keys()
    assert ours["active_slabs"] == theirs["active_slabs"] == "3"
    for name in ours:
        if name.split(":")[-1] in SLAB_FIELDS:
            assert ours[name] == theirs[name], name
    (ours, theirs) = (_stats(r) for r in both(fresh, b"stats items\r\n"))
    assert ours.keys() == theirs.keys()
    for name in ours:
        if name.endswith((":number", ":mem_requested")):
            assert ours[name] == theirs[name], name


def test_empty_node(fresh):
    ours, theirs = both(fresh, b"stats slabs\r\nstats items\r\nstats cachedump 1 0\r\n")
    assert ours == theirs
    assert ask(fresh, b"lru_crawler metadump all\r\n") == [b"END\r\n"] * 2
