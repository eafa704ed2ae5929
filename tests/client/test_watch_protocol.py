"""`watch mutations` against the real memcached: the same storage commands give the same
item_store log lines (the timestamp, gid, slab class and client fd aside), and `watch
changes`, our extension, in the same log-line format with versions and deletes."""
import re
import socket

from helpers.cluster import wait_for

COMMANDS = [b"set a 0 0 1\r\nx\r\n", b"add a 0 100 1\r\ny\r\n", b"set b 0 100 2\r\nxy\r\n",
            b"delete a\r\n", b"incr b 1\r\n", b"append a 0 0 1\r\nz\r\n",
            b"cas b 0 0 1 999\r\nq\r\n", b"ms c 2 T50\r\nhi\r\n", b"set a\x01x 0 0 1\r\n1\r\n"]
LINE = re.compile(rb"ts=(\d+)\.(\d+) gid=(\d+) type=item_store key=(\S+) status=(\w+) "
                  rb"cmd=(\w+) ttl=(\d+) clsid=\d+ cfd=-?\d+ size=(\d+)")


def lines(sock: socket.socket, count: int) -> list[bytes]:
    buf = b""

    def enough():
        nonlocal buf
        try:
            buf += sock.recv(65536)
        except TimeoutError:
            pass
        return buf.count(b"\n") >= count
    wait_for(enough, 10, f"{count} log lines")
    return buf.split(b"\n")[:count]


def mutations(port: int) -> list[tuple]:
    watcher = socket.create_connection(("127.0.0.1", port))
    watcher.settimeout(0.2)
    watcher.sendall(b"watch mutations\r\n")
    assert lines(watcher, 1) == [b"OK\r"]
    client = socket.create_connection(("127.0.0.1", port))
    client.settimeout(5)
    for command in COMMANDS:
        client.sendall(command)
        client.recv(100)
    out = []
    for line in lines(watcher, 7):
        m = LINE.fullmatch(line)
        assert m, line
        out.append(m.groups())
    watcher.close()
    client.close()
    return out


def test_mutations_are_logged_as_memcached_logs_them(pycache, memcached):
    ours, theirs = mutations(pycache.port), mutations(memcached.port)
    # Timestamps and gids differ; gids rise in both.
    for rows in ours, theirs:
        gids = [int(r[2]) for r in rows]
        assert gids == sorted(gids) and len(set(gids)) == len(gids)
    # key, status, cmd, size alike; the TTL as seconds left, read a moment apart.
    assert [r[3:6] + r[7:] for r in ours] == [r[3:6] + r[7:] for r in theirs]
    assert all(abs(int(a[6]) - int(b[6])) <= 1 for a, b in zip(ours, theirs, strict=True))


def test_an_unknown_watcher_is_refused_as_memcached_refuses_it(pycache, memcached):
    for port in pycache.port, memcached.port:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(5)
            s.sendall(b"watch nonsense\r\n")
            assert s.recv(100) == b"ERROR\r\n"


def test_a_change_stream_carries_versions_and_deletes_and_resumes(pycache):
    def stream(request: bytes) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", pycache.port))
        s.settimeout(0.2)
        s.sendall(request)
        return s

    watcher = stream(b"watch changes prefix=w%3A\r\n")
    ok, head = lines(watcher, 2)
    assert ok == b"OK\r" and b" type=resume " in head and b" status=ok reason=none" in head
    boot = re.search(rb"boot=(\w+)", head).group(1)
    with socket.create_connection(("127.0.0.1", pycache.port)) as c:
        c.settimeout(5)

        def call(request: bytes) -> bytes:
            c.sendall(request)
            return c.recv(200)
        assert call(b"set w:1 0 0 1\r\na\r\n") == b"STORED\r\n"
        assert call(b"set other 0 0 1\r\na\r\n") == b"STORED\r\n"
        cas = int(call(b"gets w:1\r\n").split()[4])
        assert call(b"delete w:1\r\n") == b"DELETED\r\n"
    changes = lines(watcher, 2)
    assert [re.search(rb"type=change key=(\S+) kind=(\w+)", x).groups() for x in changes] == \
        [(b"w%3A1", b"set"), (b"w%3A1", b"delete")]
    versions = [int(re.search(rb"version=(\d+)", x).group(1)) for x in changes]
    assert versions[0] == cas < versions[1]
    watcher.close()
    # Resumed from after the set: the delete again; from another process: a gap.
    gid = int(re.search(rb"gid=(\d+)", changes[0]).group(1))
    again = stream(b"watch changes prefix=w%%3A after=%s:%d\r\n" % (boot, gid))
    ok, head, delete = lines(again, 3)
    assert b"status=ok" in head and b"kind=delete" in delete
    other = stream(b"watch changes after=0123456789abcdef:%d\r\n" % gid)
    assert b"status=gap reason=restart" in lines(other, 2)[1]
    for s in again, other:
        s.close()
