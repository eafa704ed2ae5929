"""memcached's `watch` streams against the real memcached 1.6.18: the same conversation gives
the same log lines, once what differs by nature is set aside (timestamps, where gids start,
slab classes, fds and client ports), and the same answers to every argument."""
import re
import socket
import struct
import time

import pytest
from helpers.cluster import wait_for
from helpers.servers import memcached_available, start_memcached, start_node

VARIABLE = [(rb"^ts=\d+\.\d+ gid=\d+ ", b""), (rb" clsid=\d+", b""), (rb" cfd=-?\d+", b""),
            (rb" rport=\d+", b"")]


class Watching:
    """A connection that sent `watch ...` and got its OK: the lines that follow."""

    def __init__(self, port: int, request: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.buf = b""
        self.sock.sendall(request)
        assert self.lines(1) == [b"OK\r"]

    def _more(self) -> None:
        try:
            self.buf += self.sock.recv(1 << 20)
        except TimeoutError:
            pass

    def lines(self, count: int) -> list[bytes]:
        wait_for(lambda: self._more() or self.buf.count(b"\n") >= count, 10,
                 f"{count} log lines", detail=lambda: repr(self.buf[-2000:]))
        out = self.buf.split(b"\n")[:count]
        self.buf = b"\n".join(self.buf.split(b"\n")[count:])
        return out

    def rest(self, settle: float = 0.3) -> list[bytes]:
        """Every line that comes within `settle` seconds of the last."""
        time.sleep(settle)
        self._more()
        out, _, self.buf = self.buf.rpartition(b"\n")
        return out.split(b"\n") if out else []

    def close(self) -> None:
        self.sock.close()


def normal(lines: list[bytes]) -> list[bytes]:
    """The lines in gid order (memcached's worker threads log out of order), checked for
    distinct gids, each led by its gid's distance from the first (memcached numbers only the
    lines some watcher wanted) and stripped of what differs between two servers."""
    gids = [int(re.match(rb"ts=\d+\.\d+ gid=(\d+) ", x).group(1)) for x in lines]
    assert len(set(gids)) == len(gids)
    out = []
    for gid, line in sorted(zip(gids, lines, strict=True)):
        for pattern, repl in VARIABLE:
            line = re.sub(pattern, repl, line)
        out.append(b"+%d %s" % (gid - min(gids), line))
    return out


def converse(port: int, commands: list) -> None:
    """Each command on one client connection, its answer read before the next (a number
    is a pause)."""
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.settimeout(5)
        for command in commands:
            if isinstance(command, float):
                time.sleep(command)
                continue
            c.sendall(command)
            time.sleep(0.02)
            c.recv(1 << 16)


def stream(port: int, request: bytes, commands: list) -> list[bytes]:
    w = Watching(port, request)
    converse(port, commands)
    try:
        return normal(w.rest())
    finally:
        w.close()


LOOKUPS = [b"set a 0 0 2\r\nhi\r\n", b"set a 0 0 3\r\nhoo\r\n", b"add a 0 0 1\r\nx\r\n",
           b"append a 0 0 1\r\nx\r\n", b"gets a\r\n", b"cas a 0 0 1 999\r\nx\r\n",
           b"set n 0 0 1\r\n5\r\n", b"incr n 10\r\n", b"touch a 100\r\n", b"gat 0 a n\r\n",
           b"get a nope n\r\n", b"mg a v\r\n", b"ms b 2\r\nhi\r\n", b"ma n\r\n", b"mn\r\n",
           b"md b\r\n", b"set k%20x\x01 0 0 1\r\nx\r\n", b"replace zz 0 0 1\r\nx\r\n",
           b"prepend zz 0 0 1\r\nx\r\n", b"decr zz 1\r\n", b"delete a 0\r\n",
           b"set big 0 0 2000000\r\n" + b"x" * 2_000_000 + b"\r\n", b"delete n\r\n"]


def test_fetchers_log_every_lookup_as_memcached_does(pycache, memcached):
    ours, theirs = (stream(port, b"watch fetchers\r\n", LOOKUPS)
                    for port in (pycache.port, memcached.port))
    assert ours == theirs
    assert b"type=item_get key=k%2520x%01 status=not_found size=0" in \
        [x.split(b" ", 1)[1] for x in ours]


def test_expired_and_flushed_lookups_say_so(pycache, memcached):
    commands = [b"set e 0 1 1\r\nx\r\n", b"set f 0 0 1\r\nx\r\n", 2.1, b"get e\r\n",
                b"flush_all\r\n", b"get f\r\n", b"get f\r\n"]
    ours, theirs = (stream(port, b"watch fetchers\r\n", commands)
                    for port in (pycache.port, memcached.port))
    assert ours == theirs
    assert [x.split()[2:4] for x in ours[2:]] == [
        [b"key=e", b"status=expired"], [b"key=f", b"status=flushed"],
        [b"key=f", b"status=not_found"]]


def test_mutations_log_a_value_too_large_as_memcached_does(pycache, memcached):
    big = b"x" * (1024 * 1024 + 10)
    commands = [b"set big 5 100 %d\r\n%s\r\n" % (len(big), big), b"set ok 0 0 1\r\nx\r\n",
                b"add big2 0 0 %d\r\n%s\r\n" % (len(big), big),
                b"append big3 0 0 %d\r\n%s\r\n" % (len(big), big)]
    ours, theirs = (stream(port, b"watch mutations\r\n", commands)
                    for port in (pycache.port, memcached.port))
    assert ours == theirs
    assert [x.split()[2:6] for x in ours if b"too_large" in x] == [
        [b"key=big", b"status=too_large", b"cmd=set", b"ttl=0"],
        [b"key=big2", b"status=too_large", b"cmd=add", b"ttl=0"],
        [b"key=big3", b"status=too_large", b"cmd=append", b"ttl=0"]]


def test_a_bare_watch_is_fetchers(pycache, memcached):
    commands = [b"set a 0 0 1\r\nx\r\n", b"get a\r\n"]
    ours, theirs = (stream(port, b"watch\r\n", commands)
                    for port in (pycache.port, memcached.port))
    assert ours == theirs and all(b"type=item_get" in x for x in ours) and len(ours) == 2


def test_streams_combine_on_one_line_in_the_order_things_happened(pycache, memcached):
    commands = [b"set c 0 0 1\r\nx\r\n", b"get c\r\n", b"add c 0 0 1\r\ny\r\n",
                b"incr c 1\r\n", b"delete c\r\n"]
    for request in b"watch fetchers mutations\r\n", b"watch mutations fetchers fetchers\r\n":
        ours, theirs = (stream(port, request, commands)
                        for port in (pycache.port, memcached.port))
        # memcached stamps a line when it is logged, its item_get first.
        assert ours == theirs
        assert [x.split()[1] for x in ours] == [
            b"type=item_get", b"type=item_store", b"type=item_get", b"type=item_get",
            b"type=item_store", b"type=item_get", b"type=item_get"]


def test_connevents_log_each_connection_and_why_it_closed(pycache, memcached):
    def lifecycle(port: int) -> list[bytes]:
        w = Watching(port, b"watch connevents\r\n")
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"quit\r\n")
        c.recv(10)
        c.close()
        time.sleep(0.1)
        reset = socket.create_connection(("127.0.0.1", port))
        reset.sendall(b"version\r\n")
        reset.recv(100)
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        time.sleep(0.1)
        bad = socket.create_connection(("127.0.0.1", port))
        bad.sendall(b"x" * 3000 + b"\r\n")
        bad.recv(100)
        bad.close()
        time.sleep(0.1)
        other = Watching(port, b"watch fetchers\r\n")
        other.close()                     # a watcher that hangs up
        try:
            return normal(w.rest(0.5))
        finally:
            w.close()

    ours, theirs = lifecycle(pycache.port), lifecycle(memcached.port)
    # Up to the second watcher the gids match too; while it comes and goes memcached spends
    # one gid no connevents line shows, so its lines are compared without them.
    assert ours[:7] == theirs[:7]
    assert [x.split(b" ", 1)[1] for x in ours] == [x.split(b" ", 1)[1] for x in theirs]
    assert [re.sub(rb" rip=\S+ transport=tcp", b"", x.split(b" ", 1)[1]) for x in ours] == [
        b"type=conn_new", b"type=conn_close reason=normal",
        b"type=conn_new", b"type=conn_close reason=error",
        b"type=conn_new", b"type=conn_close reason=normal",
        b"type=conn_new", b"type=conn_close reason=error"]
    assert all(b" rip=127.0.0.1 " in x for x in ours)


@pytest.mark.parametrize("request_, answer", [
    (b"watch bogus\r\n", b"ERROR\r\n"),
    (b"watch Fetchers\r\n", b"ERROR\r\n"),
    (b"watch fetchers bogus\r\n", b"ERROR\r\n"),
    (b"watch bogus fetchers\r\n", b"ERROR\r\n"),
    (b"watch deletions\r\n", b"ERROR\r\n"),        # came after 1.6.18
    (b"watch noreply\r\nget unset\r\n", b"END\r\n"),  # noreply hides the ERROR, nothing else
    (b"watch fetchers noreply\r\nget unset\r\n", b"END\r\n"),
    (b"watch\r\nget unset\r\n", b"OK\r\n"),            # nothing after watch is run
    (b"get unset\r\nwatch evictions\r\n", b"END\r\nOK\r\n"),
    (b"watch  sysevents   proxyuser\r\n", b"OK\r\n"),
    (b"watch rawcmds proxyreqs proxyevents connevents\n", b"OK\r\n"),
])
def test_watch_arguments_are_answered_as_memcached_answers_them(pycache, memcached, request_,
                                                                answer):
    for port in pycache.port, memcached.port:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(0.3)
            s.sendall(request_)
            got = b""
            try:
                while len(got) < 100 and (chunk := s.recv(100)):
                    got += chunk
            except TimeoutError:
                pass
            assert got == answer, port


def evictions(port: int) -> list[bytes]:
    w = Watching(port, b"watch evictions\r\n")
    value = b"x" * 10_000
    converse(port, [b"set k0 0 1000 10000\r\n" + value + b"\r\n",
                    b"set k1 0 0 10000\r\n" + value + b"\r\n", b"get k1\r\n", 1.1])
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.settimeout(5)
        for i in range(2, 400):
            c.sendall(b"set k%d 0 0 10000\r\n" % i + value + b"\r\n")
            assert c.recv(100) == b"STORED\r\n"
    try:
        return w.rest(0.5)
    finally:
        w.close()


def test_evictions_log_the_item_evicted_as_memcached_does():
    if not memcached_available():
        pytest.skip("memcached 1.6.18 binary not installed")
    servers = start_node("-m", "2"), start_memcached("-m", "2")
    try:
        ours, theirs = (evictions(s.port) for s in servers)
    finally:
        for s in servers:
            s.stop()
    line = re.compile(rb"ts=\d+\.\d+ gid=\d+ type=eviction key=(\S+) fetch=(yes|no) "
                      rb"ttl=(-?\d+) la=(\d+) clsid=\d+ size=(\d+)")
    # How much fits differs (no slabs here). memcached's LRU evicts k0, k1 (read once) and k2
    # in store order; our S3-FIFO keeps k1, read since its store, in its main queue and
    # evicts the unread ones oldest first: k0, k2, k3. The lines for the same item agree.
    first = [[line.fullmatch(x).groups() for x in lines[:3]] for lines in (ours, theirs)]
    a, b = first[0][0], first[1][0]
    assert (a[0], a[1], a[4]) == (b[0], b[1], b[4]) == (b"k0", b"no", b"10000")
    assert abs(int(a[2]) - int(b[2])) <= 2      # TTL and idle time in seconds, memcached's
    assert abs(int(a[3]) - int(b[3])) <= 2      # clock ticking apart from ours
    assert [g[0] for g in first[1]] == [b"k0", b"k1", b"k2"]
    assert first[1][1][1] == b"yes"
    assert [g[:3] for g in first[0]] == [(b"k0", b"no", first[0][0][2]), (b"k2", b"no", b"-1"),
                                         (b"k3", b"no", b"-1")]
    assert 990 <= int(first[0][0][2]) <= 1000
