"""Real memcached clients, each pointed at one node of a three-node cluster, see one cache:
what they write through one node every other node serves; memccapable passes on any node."""
import asyncio
import shutil
import subprocess

import pytest
from helpers.cluster import owned_keys

BIG = b"\x00\xffbig" * 100_000          # 800 kB: below the 1 MB item limit
MEMCCAPABLE = shutil.which("memccapable")


def spread_keys(fleet, per_node=3):
    """Keys owned by each node in turn, as str."""
    return [k.decode() for n in range(len(fleet)) for k in owned_keys(fleet, n, per_node, "cl")]


def check_one_cache(fleet, keys):
    """Every node answers what the client wrote (read over the raw protocol)."""
    for node in fleet.nodes:
        out = node.call(b"get " + b" ".join(k.encode() for k in keys) + b"\r\n")
        assert out.count(b"VALUE ") == len(keys), (node.name, out[:300])


def test_pymemcache(fleet3):
    pytest.importorskip("pymemcache", reason="pymemcache not installed (pip install -e .[test])")
    from pymemcache.client.base import Client

    keys = spread_keys(fleet3)
    c = Client((fleet3[0].host, fleet3[0].port), timeout=10, default_noreply=False)
    try:
        c.flush_all()
        for i, k in enumerate(keys):
            assert c.set(k, b"%d" % i) is True
        assert c.get_many(keys) == {k: b"%d" % i for i, k in enumerate(keys)}
        check_one_cache(fleet3, keys)
        for k in keys:
            value, cas = c.gets(k)
            assert c.cas(k, value + b"0", cas) is True
            assert c.cas(k, b"x", cas) is False
            assert c.incr(k, 1) == int(value + b"0") + 1
            assert c.append(k, b"a") and c.prepend(k, b"p")
            assert c.touch(k, 100) is True
        assert c.set(keys[0], BIG) and c.get(keys[0]) == BIG
        assert c.delete_many(keys)
        assert c.get_many(keys) == {}
        assert c.add(keys[1], b"n") is True and c.add(keys[1], b"n") is False
    finally:
        c.close()


def test_python_memcached(fleet3):
    memcache = pytest.importorskip("memcache", reason="python-memcached not installed")
    keys = spread_keys(fleet3)
    c = memcache.Client([f"{fleet3[1].host}:{fleet3[1].port}"], cache_cas=True)
    try:
        assert c.flush_all() is None or True
        assert c.set_multi({k: f"v{i}" for i, k in enumerate(keys)}) == []
        assert c.get_multi(keys) == {k: f"v{i}" for i, k in enumerate(keys)}
        check_one_cache(fleet3, keys)
        for k in keys:
            assert c.gets(k) is not None
            assert c.cas(k, "changed")
            assert c.get(k) == "changed"
            assert c.set(k, 5) and c.incr(k, 2) == 7 and c.decr(k, 10) == 0
            assert c.delete(k)
            assert c.get(k) is None
    finally:
        c.disconnect_all()


def test_aiomcache(fleet3):
    aiomcache = pytest.importorskip("aiomcache", reason="aiomcache not installed")
    keys = [k.encode() for k in spread_keys(fleet3)]

    async def main():
        c = aiomcache.Client(fleet3[2].host, fleet3[2].port)
        try:
            await c.flush_all()
            for i, k in enumerate(keys):
                assert await c.set(k, b"a%d" % i)
            assert await c.multi_get(*keys) == tuple(b"a%d" % i for i in range(len(keys)))
            for k in keys:
                value, cas = await c.gets(k)
                assert await c.cas(k, value + b"!", cas)
                assert await c.get(k) == value + b"!"
                assert await c.touch(k, 100)
                assert await c.delete(k)
                assert await c.get(k) is None
        finally:
            await c.close()

    asyncio.run(main())


def test_pylibmc(fleet3):
    pylibmc = pytest.importorskip("pylibmc", reason="pylibmc not installed (pip install pylibmc)")
    keys = spread_keys(fleet3)
    c = pylibmc.Client([f"{fleet3[0].host}:{fleet3[0].port}"], behaviors={"cas": True})
    c.flush_all()
    c.set_multi({k: b"p%d" % i for i, k in enumerate(keys)})
    assert c.get_multi(keys) == {k: b"p%d" % i for i, k in enumerate(keys)}
    check_one_cache(fleet3, keys)
    for k in keys:
        value, cas = c.gets(k)
        assert c.cas(k, value + b"1", cas)
        assert not c.cas(k, b"x", cas)
        assert c.get(k) == value + b"1"
        c.delete(k)
        assert c.get(k) is None


@pytest.mark.skipif(MEMCCAPABLE is None,
                    reason="memccapable not installed (apt-get install libmemcached-tools)")
@pytest.mark.parametrize("node", [0, 1, 2])
def test_memccapable_against_a_node_of_the_cluster(fleet3, node):
    n = fleet3[node]
    out = subprocess.run([MEMCCAPABLE, "-h", n.host, "-p", str(n.port), "-a", "-t", "10"],
                         capture_output=True, text=True, timeout=180, check=False)
    lines = out.stdout.splitlines()
    failed = [ln for ln in lines if "[fail]" in ln.lower()]
    assert not failed, out.stdout + out.stderr
    assert sum(ln.rstrip().endswith("[pass]") for ln in lines) == 27, out.stdout + out.stderr
    assert out.returncode == 0
    # memccapable's keys were spread over the cluster: this node forwarded some of them.
    assert n.stats("cluster")["forwarded"] > 0
