"""The asynchronous seam in-process: an extension that answers later leaves a hole, and the
client still sees every reply in request order; failures, timeouts, quit, half-close and a
client that goes away while holes are open."""
import asyncio
import random

import pytest

uvloop = pytest.importorskip("uvloop")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycache_cluster.config import Config
from pycache_cluster.node import Node


def later(delay, reply):
    async def answer():
        await asyncio.sleep(delay)
        return reply
    return answer()


def delayed(conn, args):
    """`slow <seconds> <word>` answers `SLOW <word>` after that long."""
    return later(float(args[1]), b"SLOW " + args[2] + b"\r\n")


def now(conn, args):
    return b"NOW " + args[1] + b"\r\n"


async def broken(conn, args):
    raise RuntimeError("boom\nline two")


async def forever(conn, args):
    await asyncio.Event().wait()


async def started_node(timeout=5.0):
    node = Node(Config(port=0))
    ext = node.state.extensions
    ext.timeout = timeout
    ext.add_command(b"slow", delayed)
    ext.add_command(b"fast", now)
    ext.add_command(b"broken", broken)
    ext.add_command(b"forever", forever)
    await node.start()
    return node


async def exchange(port, data, expect_len=None, until=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if until is not None:
        out = await asyncio.wait_for(reader.readuntil(until), 10)
    else:
        out = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return out


def run(coro_fn, **kw):
    async def main():
        node = await started_node(**kw)
        try:
            return await coro_fn(node, node.config.port)
        finally:
            await node.stop()
    return uvloop.run(main())


def test_later_replies_keep_request_order_behind_local_ones():
    async def body(node, port):
        req = (b"slow 0.2 a\r\nset k 0 0 1\r\nx\r\nfast b\r\nslow 0.05 c\r\nget k\r\n"
               b"slow 0 d\r\nmn\r\n")
        return await exchange(port, req, until=b"MN\r\n")
    assert run(body) == (b"SLOW a\r\nSTORED\r\nNOW b\r\nSLOW c\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
                         b"SLOW d\r\nMN\r\n")


def test_failures_and_timeouts_answer_server_error_in_place():
    async def body(node, port):
        return await exchange(port, b"broken\r\nforever\r\nfast x\r\nmn\r\n", until=b"MN\r\n")
    assert run(body, timeout=0.3) == (b"SERVER_ERROR RuntimeError: boom line two\r\n"
                                      b"SERVER_ERROR timed out\r\nNOW x\r\nMN\r\n")


def test_quit_and_half_close_wait_for_open_holes():
    async def body(node, port):
        quit_out = await exchange(port, b"slow 0.2 a\r\nfast b\r\nquit\r\nfast never\r\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"slow 0.2 c\r\nfast d\r\n")
        writer.write_eof()
        half = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return quit_out, half
    assert run(body) == (b"SLOW a\r\nNOW b\r\n", b"SLOW c\r\nNOW d\r\n")


def test_client_gone_with_holes_open_leaves_nothing_behind():
    """A client that closes may only have half-closed: its holes are still filled (within
    the timeout), then the connection and its tasks are gone."""
    async def body(node, port):
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"slow 0.1 a\r\nforever\r\nfast b\r\n")
            await writer.drain()
            writer.transport.abort()
        await asyncio.sleep(1.0)
        tasks = [t for t in asyncio.all_tasks() if "_settle" in repr(t.get_coro())]
        conns = node.state.curr_conns
        # The node still serves, and no task waits for a client that is gone.
        out = await exchange(port, b"fast ok\r\nmn\r\n", until=b"MN\r\n")
        return out, len(tasks), conns
    out, open_tasks, conns = run(body, timeout=0.5)
    assert out == b"NOW ok\r\nMN\r\n"
    assert open_tasks == 0
    assert conns == 0


def test_reading_pauses_behind_a_slow_hole_and_memory_stays_bounded():
    async def body(node, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"slow 1.0 first\r\n")
        writer.write(b"set big 0 0 100000\r\n" + b"v" * 100000 + b"\r\n")
        # 40 MB of replies that must wait behind the hole for a second.
        writer.write(b"get big\r\n" * 400)
        await asyncio.sleep(0.5)
        conn = next(iter(node.state.conns))
        held = (node.state.bytes_written, conn.output_queued, conn.holes_open)
        out = await asyncio.wait_for(reader.readexactly(len(b"SLOW first\r\nSTORED\r\n")
                                                        + 400 * 100027), 10)
        writer.close()
        return out, held
    out, (written, queued, holes) = run(body)
    assert out.startswith(b"SLOW first\r\nSTORED\r\nVALUE big 0 100000\r\n")
    assert out.endswith(b"END\r\n")
    assert written == 0             # nothing overtook the hole
    assert holes == 1
    assert queued < 3 * 1024 * 1024  # parsing paused instead of queueing 40 MB behind it


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["slow", "fast", "set", "get", "noreply", "mn"]),
                          st.integers(0, 30)), min_size=1, max_size=40),
       st.randoms(use_true_random=False))
def test_random_interleavings_reply_in_request_order(ops, rnd):
    """Local and deferred replies with random delays, the pipeline in random chunks: the
    bytes equal the replies in request order."""
    req, want = [], []
    for i, (op, n) in enumerate(ops):
        if op == "slow":
            req.append(b"slow %.3f s%d\r\n" % (n / 1000, i))
            want.append(b"SLOW s%d\r\n" % i)
        elif op == "fast":
            req.append(b"fast f%d\r\n" % i)
            want.append(b"NOW f%d\r\n" % i)
        elif op == "set":
            req.append(b"set k%d 0 0 2\r\n%02d\r\n" % (n % 4, n))
            want.append(b"STORED\r\n")
        elif op == "noreply":
            req.append(b"set k%d 0 0 2 noreply\r\n%02d\r\n" % (n % 4, n))
            want.append(b"")
        elif op == "get":
            req.append(b"mg k%d v\r\n" % (n % 4))
            want.append(None)       # the value depends on the sets before it
        else:
            req.append(b"mn\r\n")
            want.append(b"MN\r\n")
    data = b"".join(req) + b"mn\r\n"

    async def body(node, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pos = 0
        while pos < len(data):
            step = rnd.randint(1, 64)
            writer.write(data[pos:pos + step])
            pos += step
            if rnd.random() < 0.3:
                await asyncio.sleep(0)
        out = b""
        while not out.endswith(b"MN\r\n") or out.count(b"MN\r\n") < 1 + sum(
                1 for w in want if w == b"MN\r\n"):
            out += await asyncio.wait_for(reader.read(65536), 10)
        writer.close()
        return out

    out = run(body)
    model = {}
    expect = []
    for (op, n), w in zip(ops, want):
        if op in ("set", "noreply"):
            model[n % 4] = b"%02d" % n
        if op == "get":
            v = model.get(n % 4)
            w = b"VA 2\r\n" + v + b"\r\n" if v is not None else b"EN\r\n"
        if w is not None:
            expect.append(w)
    assert out == b"".join(expect) + b"MN\r\n"


def test_shuffled_completion_order():
    """Holes completing in reverse order still leave in request order."""
    async def body(node, port):
        delays = [0.02 * i for i in range(10, 0, -1)]
        random.Random(3).shuffle(delays)
        req = b"".join(b"slow %.2f w%d\r\n" % (d, i) for i, d in enumerate(delays)) + b"mn\r\n"
        return await exchange(port, req, until=b"MN\r\n")
    assert run(body) == b"".join(b"SLOW w%d\r\n" % i for i in range(10)) + b"MN\r\n"
