"""The reply-ordering machinery alone: one node routes to two peers whose replies come back
through a proxy that delays them at random, so local replies and the two peers' replies
complete in random interleavings. Whatever the interleaving, the client gets the bytes in
request order; a client that closes mid-batch or stops reading costs bounded memory.

Everything runs in this process: three nodes on one uvloop in a thread, the ring installed
by hand (no gossip), the peers behind delaying TCP proxies."""
import asyncio
import random
import re
import socket
import threading
import time

import pytest
from helpers.wire import Conn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

uvloop = pytest.importorskip("uvloop")

from pycache_cluster.cluster._coord import ClusterCoordinator

from pycache_cluster.cluster.handshake import Handshake
from pycache_cluster.cluster.peers import PeerPool
from pycache_cluster.cluster.ring import Ring
from pycache_cluster.cluster.routes import Routes
from pycache_cluster.config import Config
from pycache_cluster.node import Node

NAMES = ["self", "p1", "p2"]


class DelayProxy:
    """Forwards a TCP stream; the replies come back after random delays, in order."""

    def __init__(self, target_port: int, seed: int, max_delay: float = 0.02):
        self.target_port = target_port
        self.rnd = random.Random(seed)
        self.max_delay = max_delay
        self.server = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, creader, cwriter):
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def up():
            while data := await creader.read(65536):
                swriter.write(data)
            swriter.close()

        async def down():
            while data := await sreader.read(65536):
                await asyncio.sleep(self.rnd.random() * self.max_delay)
                cwriter.write(data)
            cwriter.close()

        await asyncio.gather(up(), down(), return_exceptions=True)


def peer_commands(name):
    handshake = Handshake(name, None)

    def cluster(conn, args):
        if len(args) > 1 and args[1] == b"peer":
            return handshake.on_peer(conn, args)
        return b"ERROR\r\n"
    return cluster


class World:
    """Three nodes, the first routing to the other two through delaying proxies."""

    def __init__(self):
        self.loop = None
        self.ready = threading.Event()
        self.nodes = {}
        self.thread = threading.Thread(target=lambda: uvloop.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(30)

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        ports = {}
        for i, name in enumerate(NAMES):
            node = Node(Config(port=0))
            if name != "self":
                node.state.extensions.add_command(b"cluster", peer_commands(name))
            await node.start()
            self.nodes[name] = node
            ports[name] = node.config.port
            if name != "self":
                ports[name] = await DelayProxy(node.config.port, seed=i).start()
        me = self.nodes["self"]
        self.ring = Ring(50, dict.fromkeys(NAMES, 1))
        self.pool = PeerPool(Handshake("self", None), 2.0, 1)
        coord = ClusterCoordinator(me.state, 1, 1, 1, on_hint=lambda *a: None,
                                   broadcast_flush=None)
        routes = Routes(coord, me.store, self.pool, "self")
        routes.install(self.ring, {n: ("127.0.0.1", p) for n, p in ports.items()})
        self.port = me.config.port
        self.ready.set()
        await self.stop.wait()
        for node in self.nodes.values():
            await node.stop()

    def call_in_loop(self, fn):
        done = threading.Event()
        box = []

        def run():
            box.append(fn())
            done.set()
        self.loop.call_soon_threadsafe(run)
        assert done.wait(10)
        return box[0]

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


def keys_of(world, owner, prefix, n):
    out, i = [], 0
    while len(out) < n:
        k = b"%s%d" % (prefix, i)
        if world.ring.owners(k)[0] == owner:
            out.append(k)
        i += 1
    return out


_example = iter(range(10 ** 9))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "noreply", "get", "gets", "mg", "delete",
                                                "mn", "bad"]),
                              st.integers(0, 11), st.integers(0, 11)),
                    min_size=1, max_size=60),
       rnd=st.randoms(use_true_random=False))
def test_random_interleavings_of_local_and_remote_replies_keep_request_order(world, ops, rnd):
    ex = next(_example)
    keys = [k for owner in NAMES for k in keys_of(world, owner, b"o%d:%s:" % (ex, owner.encode()),
                                                  4)]
    model, req, want = {}, [], []
    for i, (op, a, b) in enumerate(ops):
        k, k2 = keys[a], keys[b]
        if op in ("set", "noreply"):
            v = b"%d" % i
            model[k] = v
            req.append(b"set %s 0 0 %d%s\r\n%s\r\n" % (k, len(v),
                                                       b" noreply" if op == "noreply" else b"",
                                                       v))
            if op == "set":
                want.append(b"STORED\r\n")
        elif op in ("get", "gets"):
            req.append(b"%s %s %s\r\n" % (op.encode(), k, k2))
            out = b""
            for kk in (k, k2):
                if kk in model:
                    out += b"VALUE %s 0 %d%s\r\n%s\r\n" % (kk, len(model[kk]),
                                                           b" CAS" if op == "gets" else b"",
                                                           model[kk])
            want.append(out + b"END\r\n")
        elif op == "mg":
            req.append(b"mg %s v q\r\n" % k)
            if k in model:
                want.append(b"VA %d\r\n%s\r\n" % (len(model[k]), model[k]))
        elif op == "delete":
            req.append(b"delete %s\r\n" % k)
            want.append(b"DELETED\r\n" if model.pop(k, None) is not None else b"NOT_FOUND\r\n")
        elif op == "mn":
            req.append(b"mn\r\n")
            want.append(b"MN\r\n")
        else:
            req.append(b"bogus\r\n")
            want.append(b"ERROR\r\n")
    data, expected = b"".join(req) + b"version\r\n", b"".join(want) + b"VERSION 1.6.18\r\n"
    with Conn(world.port, timeout=20) as c:
        pos = 0
        while pos < len(data):
            step = rnd.randint(1, 200)
            c.send(data[pos:pos + step])
            pos += step
        got = c.read_until(b"VERSION 1.6.18\r\n")
    got = re.sub(rb"(VALUE \S+ \d+ \d+) \d+\r\n", rb"\1 CAS\r\n", got)
    assert got == expected


def test_a_client_closing_mid_batch_leaves_nothing_waiting(world):
    remote = keys_of(world, "p1", b"close:", 30) + keys_of(world, "p2", b"close:", 30)
    state = world.nodes["self"].state
    accepted = state.total_conns
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", world.port))
        s.sendall(b"".join(b"set %s 0 0 1\r\nx\r\nget %s\r\n" % (k, k) for k in remote))
        s.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # Counted once the node accepted them all (a loaded loop may not have yet).
        if state.total_conns - accepted == 20 and state.curr_conns == 0 and \
                world.call_in_loop(lambda: world.pool.counters()["waiting"]) == 0:
            break
        time.sleep(0.05)
    left = world.call_in_loop(lambda: [(c.holes_open, c.output_queued) for c in state.conns])
    assert state.curr_conns == 0, (left, world.call_in_loop(world.pool.counters))
    with Conn(world.port) as c:
        c.expect(b"get %s\r\n" % remote[0], b"VALUE %s 0 1\r\nx\r\nEND\r\n" % remote[0])


def test_a_client_that_stops_reading_holds_bounded_memory(world):
    """Remote 500 kB values asked for over and over by a client that never reads: the node
    stops reading it once its replies pile up, instead of buffering them all."""
    key = keys_of(world, "p2", b"big:", 1)[0]
    with Conn(world.port) as c:
        c.expect(b"set %s 0 0 500000\r\n%s\r\n" % (key, b"b" * 500000), b"STORED\r\n")
    s = socket.create_connection(("127.0.0.1", world.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.setblocking(False)
    sent = 0
    request = b"get %s\r\n" % key
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sent < 2000 * len(request):
        try:
            sent += s.send(request * 50)
        except BlockingIOError:
            time.sleep(0.01)
    time.sleep(1.0)
    conn = next(c for c in world.nodes["self"].state.conns)
    queued, holes = world.call_in_loop(lambda: (conn.output_queued, conn.holes_open))
    s.close()
    # 2000 requests would be 1 GB of replies: the node holds a few MB and a bounded number
    # of holes, and stopped reading the rest of the requests.
    assert queued < 8 * 1024 * 1024
    assert holes <= 4096
