"""memcached's ascii authentication (-Y authfile): the same conversations with our node and
with memcached 1.6.18 started on the same file, byte for byte; a real client (pymemcache
sends the credentials as its set); the start-up checks of the file."""
import socket
import subprocess
import sys

import pytest
from helpers.servers import REPO, start_memcached, start_node
from helpers.wire import Conn
from pymemcache.client.base import Client

# Decided in Python (ascii auth's conversation (protocol/auth.py)): the sanitizer run leaves it out (pyproject.toml).
pytestmark = pytest.mark.python_logic

USERS = b"alice:s3cret\nbob:pw2\r\n"
AUTH = b"set a 0 0 12\r\nalice s3cret\r\n"


@pytest.fixture(scope="module")
def authfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "users"
    path.write_bytes(USERS)
    return path


@pytest.fixture(scope="module")
def pair(request, authfile):
    ours = start_node("-Y", str(authfile))
    request.addfinalizer(ours.stop)
    from helpers.servers import memcached_available
    if not memcached_available():
        pytest.skip("memcached 1.6.18 binary not installed")
    theirs = start_memcached("-Y", str(authfile))
    request.addfinalizer(theirs.stop)
    return ours, theirs


def _exchange(port: int, sends: list[bytes], quiet: float = 0.3) -> list[bytes]:
    """Each send on one connection, with what came back before the server went quiet (or
    b"<closed>" at its end)."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=quiet) as s:
        for data in sends:
            s.sendall(data)
            got = b""
            try:
                while chunk := s.recv(65536):
                    got += chunk
                got += b"<closed>"
            except TimeoutError:
                pass
            out.append(got)
    return out


CONVERSATIONS = [
    [b"get foo\r\n"],
    [b"version\r\n", b"quit\r\n", b"\r\n", b"mg a v\r\n"],
    [AUTH + b"get a\r\nversion\r\n"],
    [b"set a 0 0 12 noreply\r\nalice s3cret\r\nget a\r\n"],
    [b"set a 0 0 12\r\nalice s3creX\r\n", b"get a\r\n", AUTH, b"get a\r\n"],
    [b"set a 0 0 12\r\nmallory pass\r\n"],
    [b"set a 0 0 5\r\nalice\r\n"],
    [b"set a 0 0 12\r\nalice:s3cret\r\n"],
    [b"set a 0 0 12\r\nalice  s3cret\r\n"],            # one byte too many: bad termination
    [b"set a 0 0 12\r\nalice s3cretXX\r\nget a\r\n"],
    [b"set a 0 0 x\r\nset a 0 0\r\nget a\r\n"],
    [b"set k 0 0 7\r\nbob pw2\r\nset k 0 0 1\r\nx\r\nget k\r\n"],
    # Replies made before memcached writes replace each other (one response object)...
    [b"get foo\r\nget bar\r\n" + AUTH + b"get a\r\n"],
    [b"get a\r\n" * 30],
    [b"get a\r\n" * 45],
    # ...and are written when it waits for the rest of the credentials.
    [b"get a\r\nset a 0 0 12\r\n", b"alice s3cret\r\n", b"get a\r\n"],
    [b"set a 0 0 12\r\nalice", b" s3cret\r\n", b"get a\r\n"],
    # No newline in 2048 bytes: closed, the unwritten reply with it.
    [b"get a\r\n" + b"x" * 2100],
    [b"x" * 1500],
    # With -Y memcached speaks ascii only: a binary noop frame is a line of text to it.
    [b"\x80\x0a" + bytes(20) + b"\x00\x00\x00\x07\r\n"],
]


@pytest.mark.parametrize("sends", CONVERSATIONS, ids=lambda s: repr(s[0][:30]))
def test_same_bytes_as_memcached(pair, sends):
    ours, theirs = (_exchange(srv.port, sends) for srv in pair)
    assert ours == theirs


def test_counters_and_settings(pair):
    ours, theirs = pair
    for srv in pair:
        _exchange(srv.port, [b"set a 0 0 7\r\nbob pwX\r\n", b"set a 0 0 5\r\nab\r\n"])
    stats = []
    for srv in (ours, theirs):
        with Conn(srv.port) as c:
            c.send(AUTH)
            assert c.read_until(b"\r\n") == b"STORED\r\n"
            lines = c.call(b"stats\r\nstats settings\r\n").decode().splitlines()
        got = dict(line.split()[1:3] for line in lines if line.startswith("STAT "))
        stats.append({k: got[k] for k in ("auth_cmds", "auth_errors", "auth_enabled_ascii",
                                           "binding_protocol")})
    assert stats[0] == stats[1]
    assert int(stats[0]["auth_errors"]) >= 1


def test_pymemcache_authenticates_with_its_set(pair, authfile):
    ours, _ = pair
    client = Client(("127.0.0.1", ours.port), timeout=5)
    try:
        with pytest.raises(Exception, match="unauthenticated"):
            client.get(b"k")
        assert client.set(b"auth", b"alice s3cret", noreply=False) is True
        assert client.set(b"k", b"v", noreply=False) is True
        assert client.get(b"k") == b"v"
    finally:
        client.close()
    wrong = Client(("127.0.0.1", ours.port), timeout=5)
    try:
        with pytest.raises(Exception, match="authentication failure"):
            wrong.set(b"auth", b"alice nope", noreply=False)
    finally:
        wrong.close()


def test_bad_input_does_not_disturb_other_connections(pair):
    ours, _ = pair
    with Conn(ours.port) as good:
        good.send(AUTH)
        assert good.read_until(b"\r\n") == b"STORED\r\n"
        assert _exchange(ours.port, [b"\x80\x00junk" * 600]) == [b"<closed>"]
        assert _exchange(ours.port, [b"set a 0 0 99999999\r\n" + b"x" * 70000])[0] \
            .endswith(b"<closed>")
        good.expect(b"set k 0 0 1\r\nx\r\nget k\r\n", b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n")


def _serve_fails(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pycache_cluster", "serve", "-p", "0", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    return proc.stderr


def test_a_bad_authfile_stops_the_start(tmp_path):
    assert "cannot read auth file" in _serve_fails("-Y", str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.write_bytes(b"alice:x\nnocolon\n")
    assert "line 2: expected user:password" in _serve_fails("-Y", str(bad))
    good = tmp_path / "good"
    good.write_bytes(USERS)
    assert "--cluster-key-file" in _serve_fails("-Y", str(good), "--gossip-port", "0")


def test_env_variable_turns_it_on(authfile):
    import os
    node = start_node(env={**os.environ, "PYCACHE_AUTH_FILE": str(authfile)})
    try:
        assert _exchange(node.port, [b"version\r\n", AUTH])[0] == \
            b"CLIENT_ERROR unauthenticated\r\n"
    finally:
        node.stop()
