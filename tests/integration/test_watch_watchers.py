"""Watchers as memcached treats them, against the real memcached 1.6.18: one that falls
behind is told how many lines it missed, one that hangs up costs the node nothing, and past
memcached's limit of watchers the next is refused with its words."""
import re
import socket

import pytest
from helpers.cluster import wait_for
from helpers.servers import memcached_available, start_memcached, start_node


def watcher(port: int, request: bytes = b"watch fetchers\r\n", window: int = 0) -> socket.socket:
    s = socket.socket()
    if window:
        # A small receive window: the lines pile up at the server, whatever the kernel's
        # buffers would have taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
    s.connect(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(request)
    assert s.recv(4) == b"OK\r\n"
    return s


def drain(s: socket.socket, quiet: float = 0.5) -> bytes:
    out = b""
    s.settimeout(quiet)
    try:
        while chunk := s.recv(1 << 20):
            out += chunk
    except TimeoutError:
        pass
    return out


def stat(port: int, name: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.settimeout(5)
        c.sendall(b"stats\r\n")
        out = b""
        while not out.endswith(b"END\r\n"):
            out += c.recv(1 << 16)
    return int(re.search(rb"STAT %s (\d+)" % name, out).group(1))


def test_a_watcher_that_falls_behind_hears_how_many_lines_it_missed(pycache, memcached):
    keys = b" ".join(b"k%d" % i for i in range(1000))
    for port in pycache.port, memcached.port:
        before = {name: stat(port, name) for name in (b"log_watcher_sent", b"log_watcher_skipped",
                                                      b"log_worker_dropped")}
        slow = watcher(port, window=8192)
        assert stat(port, b"log_watchers") == 1, port
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.settimeout(10)
            for _ in range(200):            # 200,000 item_get lines, not read meanwhile
                c.sendall(b"get " + keys + b"\r\n")
                assert c.recv(100) == b"END\r\n"
            got = drain(slow)
            c.sendall(b"get after\r\n")     # the count comes before the next line
            assert c.recv(100) == b"END\r\n"
        got += drain(slow)
        lines = got.split(b"\n")
        skipped = [int(x[8:]) for x in lines if re.fullmatch(rb"skipped=\d+", x)]
        logged = sum(1 for x in lines if b" type=item_get " in x)
        assert all(n > 0 for n in skipped), port
        if port == memcached.port and not skipped:
            # memcached's workers hand lines to its logger thread through buffers of their
            # own: when the logger falls behind, they drop lines there (log_worker_dropped)
            # before any watcher's buffer fills, and no watcher is told. Which one happens
            # depends on its threads' timing; lines went missing either way.
            assert stat(port, b"log_worker_dropped") > before[b"log_worker_dropped"], port
        else:
            assert skipped, port
        assert b" type=item_get key=after status=not_found " in lines[-2], port
        grew = {name: stat(port, name) - n for name, n in before.items()}
        if port == pycache.port:
            # Here every line is sent or counted, and the watcher hears of every line lost:
            # those it could not take (log_watcher_skipped), and those the store's notes
            # lost before any watcher saw them when the feed's ring filled on a busy loop
            # (log_worker_dropped; memcached counts its workers' drops in stats only).
            assert logged + sum(skipped) == 200_001
            assert grew[b"log_watcher_sent"] == logged
            assert grew[b"log_watcher_skipped"] + grew[b"log_worker_dropped"] == sum(skipped)
        else:
            assert grew[b"log_watcher_skipped"] >= sum(skipped), port
        slow.close()


def test_a_watcher_that_hangs_up_costs_the_node_nothing(pycache):
    before = stat(pycache.port, b"curr_connections")
    for request in b"watch fetchers\r\n", b"watch connevents mutations\r\n", b"watch\r\n":
        for _ in range(5):
            watcher(pycache.port, request).close()
    # Each is noticed and closed (memcached's logger reads its watchers for this)...
    wait_for(lambda: stat(pycache.port, b"curr_connections") == before, 10,
             "the watchers' connections to close")
    # ...and the node goes on serving, with nobody left to write lines to.
    with socket.create_connection(("127.0.0.1", pycache.port)) as c:
        c.settimeout(5)
        c.sendall(b"set gone 0 0 1\r\nx\r\nget gone\r\n")
        out = b""
        while not out.endswith(b"END\r\n"):
            out += c.recv(100)
        assert out == b"STORED\r\nVALUE gone 0 1\r\nx\r\nEND\r\n"


def limit(port: int) -> bytes:
    held = [watcher(port, b"watch mutations\r\n") for _ in range(20)]
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(5)
            s.sendall(b"watch fetchers\r\n")
            return s.recv(100)
    finally:
        for s in held:
            s.close()


def test_past_twenty_watchers_the_next_is_refused_as_memcached_refuses_it():
    if not memcached_available():
        pytest.skip("memcached 1.6.18 binary not installed")
    servers = start_node(), start_memcached()
    try:
        # Our change streams are not memcached's watchers: they do not count.
        changes = [watcher(servers[0].port, b"watch changes\r\n") for _ in range(3)]
        answers = [limit(s.port) for s in servers]
        for s in changes:
            s.close()
    finally:
        for s in servers:
            s.stop()
    assert answers == [b"WATCHER_TOO_MANY log watcher limit reached\r\n"] * 2
