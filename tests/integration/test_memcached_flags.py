"""memcached 1.6.18's flags as a unit file gives them: those with a meaning here answer as
memcached with the same flags answers (the real binary, same bytes), and every other flag and
`-o` suboption stops the start with memcached's own message, then why, exit status 2."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.binary import FLUSH, exchange, frames, req
from helpers.servers import (
    MEMCACHED,
    REPO,
    STARTED,
    free_port,
    memcached_available,
    start_memcached,
    start_node,
)
from helpers.wire import Conn

from pycache_cluster import memcached_options

CLI = [sys.executable, "-m", "pycache_cluster", "serve"]
needs_memcached = pytest.mark.skipif(not memcached_available(),
                                     reason="memcached 1.6.18 is not installed")
# The flags decided in Python (the parser, the process, sockets); -F and -M, which the native
# paths answer, also run on the sanitizer build.
python_logic = pytest.mark.python_logic


def _refused(*argv: str) -> subprocess.CompletedProcess:
    out = subprocess.run([*CLI, "-p", str(free_port()), *argv], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False)
    assert out.returncode == 2, out
    return out


def both(request, *flags: str):
    """Our node and memcached, started with the same flags."""
    ours = start_node(*flags)
    request.addfinalizer(ours.stop)
    theirs = start_memcached(*flags)
    request.addfinalizer(theirs.stop)
    return ours, theirs


def settings(port: int) -> dict[bytes, bytes]:
    with Conn(port) as c:
        return dict(re.findall(rb"STAT (\S+) (\S*)\r\n", c.call(b"stats settings\r\n")))


def stat(port: int, name: bytes) -> bytes:
    with Conn(port) as c:
        return dict(re.findall(rb"STAT (\S+) (\S*)\r\n", c.call(b"stats\r\n"))).get(name)


@python_logic
@pytest.mark.parametrize("flag", sorted(memcached_options.REFUSED_FLAGS))
def test_a_flag_without_meaning_here_is_refused_with_memcacheds_message(flag):
    _, takes, why = memcached_options.REFUSED_FLAGS[flag]
    out = _refused(flag, *(["1"] if takes else []))
    assert f"invalid option -- '{flag[1]}'\nIllegal argument \"?\"\n" in out.stderr
    assert why in out.stderr


@python_logic
def test_large_pages_are_refused_with_memcacheds_own_message():
    out = _refused("-L")
    assert out.stderr.startswith(memcached_options.OWN_MESSAGE["-L"] + "\n")


@python_logic
@pytest.mark.parametrize("name", sorted(memcached_options.REFUSED))
def test_every_refused_suboption_names_memcacheds_refusal_and_why(name):
    item = (name + "path=/x:1G") if name.endswith("_") else name + "=1"
    with pytest.raises(ValueError) as e:
        memcached_options.parse([item])
    assert str(e.value).startswith(f'Illegal suboption "{item}"\n')
    assert memcached_options.REFUSED[name] in str(e.value)


@python_logic
def test_a_refused_suboption_stops_the_start():
    out = _refused("-o", "modern,slab_reassign,slab_automove=1")
    assert out.stderr.startswith('Illegal suboption "slab_reassign"\n')
    out = _refused("-o", "idle_timeout")
    assert out.stderr.startswith("Missing numeric argument for idle_timeout")
    out = _refused("-B", "foo")
    assert "Invalid value for binding protocol: foo\n -- should be one of auto, binary, " \
        "or ascii" in out.stderr


@python_logic
def test_accepted_suboptions_and_protocol_auto(request):
    node = start_node("-B", "auto", "-o", "modern,maxconns_fast,hash_algorithm=murmur3,"
                      "track_sizes,no_lru_crawler,inline_ascii_resp")
    request.addfinalizer(node.stop)
    got = settings(node.port)
    assert got[b"track_sizes"] == b"yes" and got[b"lru_crawler"] == b"no"
    with Conn(node.port) as c:
        assert c.call(b"lru_crawler metadump all\r\n") == b"CLIENT_ERROR lru crawler disabled\r\n"


@python_logic
def test_version_flag():
    out = subprocess.run([*CLI, "-V"], capture_output=True, text=True, cwd=REPO, timeout=60,
                         check=False)
    assert out.returncode == 0 and "memcached 1.6.18 protocol" in out.stdout


@needs_memcached
def test_disable_flush_dump_and_watch_answer_as_memcached(request):
    servers = both(request, "-F", "-X", "-W", "-b", "77")
    for srv in servers:
        with Conn(srv.port) as c:
            c.expect(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n")
            c.expect(b"flush_all\r\nflush_all 10 noreply\r\nget a\r\n",
                     b"CLIENT_ERROR flush_all not allowed\r\nVALUE a 0 1\r\nx\r\nEND\r\n")
            c.expect(b"stats cachedump 1 0\r\n", b"CLIENT_ERROR stats cachedump not allowed\r\n")
            c.expect(b"lru_crawler metadump all\r\n", b"ERROR metadump not allowed\r\n")
            c.expect(b"watch fetchers\r\n", b"CLIENT_ERROR watch commands not allowed\r\n")
        # Binary flush: memcached's "Auth failure." (0x20).
        got = frames(exchange(srv.port, req(FLUSH)))[0]
        assert [(f.status, f.value) for f in got] == [(0x20, b"Auth failure.")], got
        assert stat(srv.port, b"cmd_flush") == b"2"
    ours, theirs = (settings(s.port) for s in servers)
    for name in (b"flush_enabled", b"dump_enabled", b"tcp_backlog"):
        assert ours[name] == theirs[name], name
    assert ours[b"tcp_backlog"] == b"77"


@needs_memcached
def test_disable_evictions_answers_out_of_memory_as_memcached(request):
    value = b"v" * 100_000
    for srv in both(request, "-M", "-m", "4"):
        replies = set()
        with Conn(srv.port) as c:
            for i in range(200):
                replies.add(c.call(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(value), value)))
            # What is stored stays: nothing was evicted to make room.
            assert c.call(b"get k0\r\n").startswith(b"VALUE k0 ")
        assert replies == {b"STORED\r\n", b"SERVER_ERROR out of memory storing object\r\n"}
        assert stat(srv.port, b"evictions") == b"0"
        assert settings(srv.port)[b"evictions"] == b"off"


def _closed_within(port: int, seconds: float) -> bool:
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    finally:
        s.close()


@python_logic
@needs_memcached
def test_idle_timeout_closes_idle_connections_as_memcached(request):
    for srv in both(request, "-o", "idle_timeout=1"):
        # memcached closes a connection idle more than 1 s at its next pass (1-3 s).
        assert _closed_within(srv.port, 8), srv
        with Conn(srv.port) as c:
            got = dict(re.findall(rb"STAT (\S+) (\S*)\r\n", c.call(b"stats\r\n")))
        assert got[b"idle_kicks"] == b"1", srv
        # A connection that talks stays.
        with Conn(srv.port) as c:
            for _ in range(3):
                c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
                time.sleep(0.5)


def _unix_talk(path: str, data: bytes, until: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(data)
        buf = b""
        while not buf.endswith(until):
            chunk = s.recv(65536)
            assert chunk, buf
            buf += chunk
    return buf


def _start_unix(argv: list[str], path: str) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    STARTED.append(proc)
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        assert proc.poll() is None and time.monotonic() < deadline, argv
        time.sleep(0.05)
    return proc


@python_logic
@needs_memcached
def test_unix_socket_answers_as_memcached(request, tmp_path):
    conversation = b"set a 0 0 1\r\nx\r\nget a\r\ndelete a\r\nget a\r\n"
    replies, shown = [], []
    for name, argv in (("ours", [*CLI, "-s"]), ("memcached", [MEMCACHED, "-u", "root", "-s"])):
        path = str(tmp_path / f"{name}.sock")
        proc = _start_unix([*argv, path, "-a", "750"], path)
        request.addfinalizer(proc.kill)
        replies.append(_unix_talk(path, conversation, b"DELETED\r\nEND\r\n"))
        assert oct(os.stat(path).st_mode & 0o777) == "0o750"
        got = dict(re.findall(rb"STAT (\S+) (\S*)\r\n",
                              _unix_talk(path, b"stats settings\r\n", b"END\r\n")))
        assert (got[b"domain_socket"], got[b"umask"]) == (path.encode(), b"750")
        shown.append(got[b"tcpport"])       # memcached shows -p's default still
    assert replies[0] == replies[1]
    assert shown[0] == shown[1]


@python_logic
def test_unix_socket_is_for_a_node_alone():
    out = _refused("-s", "/tmp/never.sock", "--gossip-port", str(free_port(udp=True)))
    assert "peers reach each other over TCP" in out.stderr


@python_logic
def test_daemon_writes_and_removes_its_pid_file(tmp_path):
    port, pidfile = free_port(), tmp_path / "node.pid"
    out = subprocess.run([*CLI, "-p", str(port), "-d", "-P", str(pidfile), "-r"], cwd=REPO,
                         timeout=60, check=False, capture_output=True)
    assert out.returncode == 0, out     # the parent returns at once
    deadline = time.monotonic() + 30
    while not pidfile.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        with Conn(port) as c:
            c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
        assert os.getsid(pid) == pid            # its own session, detached
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert re.search(r"Max core file size\s+(unlimited|[1-9])", limits), limits
    finally:
        os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while pidfile.exists():
        assert time.monotonic() < deadline, "the pid file outlived the node"
        time.sleep(0.05)


@python_logic
@pytest.mark.skipif(os.geteuid() != 0, reason="-u only acts when started as root")
def test_user_flag_drops_root(request):
    node = start_node("-u", "nobody", "-k")
    request.addfinalizer(node.stop)
    with Conn(node.port) as c:
        c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
    status = Path(f"/proc/{node.pid}/status").read_text()
    assert re.search(r"^Uid:\s+65534\s", status, re.MULTILINE), status
    out = subprocess.run([*CLI, "-p", str(free_port()), "-u", "no-such-user-here"],
                         capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert out.returncode == 67     # memcached's EX_NOUSER
    assert "can't find the user no-such-user-here to switch to" in out.stderr
