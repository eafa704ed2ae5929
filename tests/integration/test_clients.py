"""Unchanged real memcached clients against our node: set/get/multi-get/cas/incr/delete/touch
and large values."""
import asyncio

import pytest
from helpers.servers import start_node

BIG = b"\x00\xffbig" * 100_000          # 800 kB: below the 1 MB item limit
TOO_BIG = b"x" * (2 * 1024 * 1024)


def test_pymemcache_client(pycache):
    pytest.importorskip("pymemcache", reason="pymemcache not installed (pip install -e .[test])")
    from pymemcache.client.base import Client

    c = Client(("127.0.0.1", pycache.port), timeout=10, default_noreply=False)
    try:
        c.flush_all()
        assert c.set("a", b"1") is True
        assert c.get("a") == b"1"
        assert c.get_many(["a", "b"]) == {"a": b"1"}
        assert c.add("a", b"2") is False
        assert c.replace("a", b"3") is True
        value, cas = c.gets("a")
        assert value == b"3"
        assert c.cas("a", b"4", cas) is True
        assert c.cas("a", b"5", cas) is False
        assert c.get("a") == b"4"
        assert c.incr("a", 10) == 14
        assert c.decr("a", 20) == 0
        assert c.append("a", b"x") and c.prepend("a", b"y")
        # decr 14 -> 0 leaves memcached's space padding ("0 "), which append keeps.
        assert c.get("a") == b"y0 x"
        assert c.touch("a", 100) is True
        assert c.touch("missing", 100) is False
        assert c.delete("a") is True
        assert c.get("a") is None
        assert c.set("big", BIG)
        assert c.get("big") == BIG
        c.set_many({"m1": b"1", "m2": b"2"})
        assert c.get_many(["m1", "m2", "m3"]) == {"m1": b"1", "m2": b"2"}
        assert c.delete_many(["m1", "m2"])
        assert c.version().startswith(b"1.6")
        stats = c.stats()
        assert stats[b"curr_connections"] >= 1
        from pymemcache.exceptions import MemcacheServerError

        with pytest.raises(MemcacheServerError):
            c.set("huge", TOO_BIG, noreply=False)
    finally:
        c.close()


def test_pymemcache_hashclient_two_nodes(request, pycache):
    pytest.importorskip("pymemcache", reason="pymemcache not installed (pip install -e .[test])")
    from pymemcache.client.hash import HashClient

    other = start_node()
    request.addfinalizer(other.stop)
    servers = [("127.0.0.1", pycache.port), ("127.0.0.1", other.port)]
    c = HashClient(servers, timeout=10, default_noreply=False)
    try:
        keys = [f"key{i}" for i in range(200)]
        for k in keys:
            assert c.set(k, k.encode())
        assert c.get_many(keys) == {k: k.encode() for k in keys}
        assert c.incr("counter", 1) is None
        c.set("counter", b"5")
        assert c.incr("counter", 1) == 6
        for k in keys[:50]:
            assert c.delete(k)
        assert c.get_many(keys[:50]) == {}
    finally:
        c.close()
    # Both nodes took a share of the keys.
    from pymemcache.client.base import Client

    for host, port in servers:
        node = Client((host, port))
        assert int(node.stats()[b"curr_items"]) > 0
        node.close()


def test_python_memcached_client(pycache):
    memcache = pytest.importorskip(
        "memcache", reason="python-memcached not installed (pip install -e .[test])")

    c = memcache.Client([f"127.0.0.1:{pycache.port}"], cache_cas=True)
    try:
        c.flush_all()
        assert c.set("a", "1")
        assert c.get("a") == "1"
        assert c.set("n", 5) and c.get("n") == 5
        assert c.get_multi(["a", "n", "zz"]) == {"a": "1", "n": 5}
        assert c.gets("a") == "1"
        assert c.cas("a", "2")
        assert c.get("a") == "2"
        assert c.incr("n", 3) == 8
        assert c.decr("n", 10) == 0
        assert c.touch("a", 100)
        assert c.delete("a")
        assert c.get("a") is None
        big = "b" * 900_000
        assert c.set("big", big)
        assert c.get("big") == big
        assert c.set_multi({"x": 1, "y": 2}) == []
        assert c.get_multi(["x", "y"]) == {"x": 1, "y": 2}
        assert c.get_stats()[0][1]["curr_connections"]
    finally:
        c.disconnect_all()


def test_aiomcache_client(pycache):
    aiomcache = pytest.importorskip(
        "aiomcache", reason="aiomcache not installed (pip install -e .[test])")

    async def main():
        c = aiomcache.Client("127.0.0.1", pycache.port)
        try:
            await c.flush_all()
            assert await c.set(b"a", b"1")
            assert await c.get(b"a") == b"1"
            assert await c.multi_get(b"a", b"b") == (b"1", None)
            assert await c.add(b"a", b"2") is False
            value, cas = await c.gets(b"a")
            assert value == b"1"
            assert await c.cas(b"a", b"3", cas)
            assert await c.get(b"a") == b"3"
            assert await c.incr(b"a", 2) == 5
            assert await c.decr(b"a", 1) == 4
            assert await c.touch(b"a", 100)
            assert await c.delete(b"a")
            assert await c.get(b"a") is None
            assert await c.set(b"big", BIG)
            assert await c.get(b"big") == BIG
            assert (await c.version()).startswith(b"1.6")
            stats = await c.stats()
            assert b"curr_items" in stats
        finally:
            await c.close()

    asyncio.run(main())


def test_pylibmc_client(pycache):
    pylibmc = pytest.importorskip("pylibmc", reason="pylibmc did not install (best effort)")
    c = pylibmc.Client([f"127.0.0.1:{pycache.port}"], behaviors={"cas": True})
    c.flush_all()
    assert c.set("a", b"1")
    assert c.get("a") == b"1"
    assert c.get_multi(["a", "b"]) == {"a": b"1"}
    value, cas = c.gets("a")
    assert value == b"1"
    assert c.cas("a", b"2", cas)
    assert not c.cas("a", b"3", cas)
    assert c.get("a") == b"2"
    assert c.incr("a", 3) == 5
    assert c.decr("a", 1) == 4
    assert c.touch("a", 100)
    assert c.delete("a")
    assert c.get("a") is None
    assert c.set("big", BIG)
    assert c.get("big") == BIG
    c.set_multi({"x": b"1", "y": b"2"})
    assert c.get_multi(["x", "y"]) == {"x": b"1", "y": b"2"}
    assert c.get_stats()
