"""Memberlist on real UDP/TCP sockets in one process, on asyncio and on uvloop."""

import asyncio
import os

import pytest
import uvloop

from pycache_cluster.gossip import config
from pycache_cluster.gossip.keyring import Keyring
from pycache_cluster.gossip.memberlist import Listener, Memberlist
from pycache_cluster.gossip.state import State
from pycache_cluster.gossip.transport import NetTransport


class Events(Listener):
    def __init__(self):
        self.log = []

    def on_join(self, member):
        self.log.append(("join", member.name))

    def on_leave(self, member):
        self.log.append((member.state.label, member.name))

    def on_update(self, member):
        self.log.append(("update", member.name))


def member(name, host, keyring, port=0):
    cfg = config.local(name=name, bind_host=host, bind_port=port, keyring=keyring)
    events = Events()
    return Memberlist(cfg, NetTransport(host, port), events), events


async def until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def states(ml):
    return {mb.name: mb.state for mb in ml.members()}


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_three_members_join_update_and_leave(runner):
    keyring = Keyring([os.urandom(32)])

    async def scenario():
        a, ea = member("a", "127.0.0.41", keyring)
        b, eb = member("b", "127.0.0.42", keyring)
        c, _ = member("c", "127.0.0.43", keyring)
        for ml in (a, b, c):
            await ml.start()
        seed = f"127.0.0.41:{a.local_member.port}"
        assert await a.join(seed) == 0  # only ourselves: first member
        assert await b.join(seed) == 1
        assert await c.join([seed], retry=False) == 1
        await until(lambda: all(states(ml) == dict.fromkeys("abc", State.ALIVE)
                                for ml in (a, b, c)))
        b.update_meta(weight=5)
        await until(lambda: a.member("b").meta.weight == 5)
        await c.leave()
        await c.shutdown()
        await until(lambda: states(a)["c"] == State.LEFT and states(b)["c"] == State.LEFT)
        assert ("left", "c") in ea.log and ("update", "b") in ea.log
        assert ("join", "b") in eb.log  # our own join event
        assert a.stats()["dropped_auth"] == 0 and a.stats()["bytes_sent"] > 0
        for ml in (a, b):
            await ml.shutdown()

    runner(scenario())


def test_join_resolves_dns_names_and_retries_until_a_seed_answers():
    async def scenario():
        a, _ = member("a", "127.0.0.1", None)
        await a.start()
        port = a.local_member.port
        await a.shutdown()
        # The seed is down; b keeps retrying "localhost" until a comes back on that port.
        b, _ = member("b", "127.0.0.44", None)
        await b.start()
        joining = asyncio.create_task(b.join(f"localhost:{port}"))
        await asyncio.sleep(0.6)
        assert not joining.done()
        a2, _ = member("a", "127.0.0.1", None, port=port)
        await a2.start()
        assert await asyncio.wait_for(joining, 10) >= 1
        await until(lambda: states(a2).get("b") == State.ALIVE)
        for ml in (a2, b):
            await ml.shutdown()

    asyncio.run(scenario())


def test_killed_member_is_declared_dead():
    async def scenario():
        mls = [member(n, f"127.0.0.{50 + i}", None)[0] for i, n in enumerate("abcd")]
        for ml in mls:
            await ml.start()
        seed = f"127.0.0.50:{mls[0].local_member.port}"
        for ml in mls[1:]:
            await ml.join(seed)
        await until(lambda: all(len(states(ml)) == 4 for ml in mls))
        await mls[3].shutdown()  # silent: no leave
        await until(lambda: all(states(ml)["d"] == State.DEAD for ml in mls[:3]), 15)
        assert all(states(ml)[n] == State.ALIVE for ml in mls[:3] for n in "abc")
        for ml in mls[:3]:
            await ml.shutdown()

    asyncio.run(scenario())
