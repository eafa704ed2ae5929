"""The node as a user runs it: `pycache-cluster serve` flags, PYCACHE_* environment, --help,
--version, clean exit on SIGTERM/SIGINT and on `shutdown` (with -A), connection limit."""
import os
import re
import signal
import subprocess
import sys

import pytest
from helpers.servers import REPO, Server, free_port, node_argv, node_env, start_node
from helpers.wire import Conn

CLI = [sys.executable, "-m", "pycache_cluster"]


def _settings(port):
    with Conn(port) as c:
        out = c.call(b"stats settings\r\n")
    return dict(re.findall(rb"STAT (\S+) (\S+)\r\n", out))


def test_help_documents_every_flag():
    out = subprocess.run([*CLI, "serve", "--help"], capture_output=True, text=True, cwd=REPO, check=False,
                         timeout=60)
    assert out.returncode == 0
    for flag in ("-p", "--port", "-l", "--listen", "-m", "--memory-limit", "-c", "--conn-limit",
                 "-I", "--max-item-size", "-U", "-v", "-A", "--enable-shutdown",
                 "PYCACHE_PORT", "PYCACHE_LISTEN", "PYCACHE_MEMORY_LIMIT"):
        assert flag in out.stdout, flag


def test_version_flag():
    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, cwd=REPO, check=False,
                         timeout=60)
    assert out.returncode == 0
    assert "pycache-cluster" in out.stdout and "1.6.18" in out.stdout


def test_udp_other_than_zero_is_refused_clearly():
    out = subprocess.run([*CLI, "serve", "-p", str(free_port()), "-U", "11211"],
                         capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert out.returncode == 2
    assert "UDP is not supported" in out.stderr


def test_udp_off_is_accepted(request):
    node = start_node("-U", "off")
    request.addfinalizer(node.stop)
    assert _settings(node.port)[b"udpport"] == b"0"


def test_bad_item_size_is_refused():
    out = subprocess.run([*CLI, "serve", "-I", "1q"], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=False)
    assert out.returncode == 2
    assert "invalid size" in out.stderr


def test_flags_reach_the_node(request):
    node = start_node("-m", "100", "-I", "2m", "-c", "50", "-vv")
    request.addfinalizer(node.stop)
    s = _settings(node.port)
    assert s[b"maxbytes"] == str(100 * 1024 * 1024).encode()
    assert s[b"item_size_max"] == str(2 * 1024 * 1024).encode()
    assert s[b"maxconns"] == b"50"
    assert s[b"inter"] == b"127.0.0.1"
    assert s[b"tcpport"] == str(node.port).encode()
    with Conn(node.port) as c:
        n = 1500 * 1024
        c.expect(b"set big 0 0 %d\r\n%s\r\n" % (n, b"x" * n), b"STORED\r\n")
        stats = dict(re.findall(rb"STAT (\S+) (\S+)\r\n", c.call(b"stats\r\n")))
        assert stats[b"limit_maxbytes"] == str(100 * 1024 * 1024).encode()
        assert stats[b"version"] == b"1.6.18"
        assert stats[b"pycache_version"]


def test_environment_variables(request):
    port = free_port()
    env = dict(os.environ, PYCACHE_PORT=str(port), PYCACHE_MEMORY_LIMIT="32",
               PYCACHE_MAX_ITEM_SIZE="512k", PYCACHE_ENABLE_SHUTDOWN="1")
    node = Server([*CLI, "serve"], port, env=node_env(env)).start()
    request.addfinalizer(node.stop)
    s = _settings(port)
    assert s[b"maxbytes"] == str(32 * 1024 * 1024).encode()
    assert s[b"item_size_max"] == b"524288"
    assert s[b"shutdown_command"] == b"yes"
    assert s[b"inter"] == b"127.0.0.1"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(sig):
    node = start_node()
    try:
        with Conn(node.port) as c:
            c.expect(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n")
            # A reply in flight when the signal arrives is still delivered whole.
            n = 512 * 1024
            c.expect(b"set big 0 0 %d\r\n%s\r\n" % (n, b"y" * n), b"STORED\r\n")
            c.send(b"get big\r\n")
            head = c.read_exact(16)         # the node is answering: the reply is in flight
            node.proc.send_signal(sig)
            reply = head + c.read_until(b"END\r\n")
            assert reply == b"VALUE big 0 %d\r\n%s\r\nEND\r\n" % (n, b"y" * n)
            assert node.proc.wait(30) == 0
            assert c.read_to_eof() == b""
    finally:
        node.stop()


def test_shutdown_command_needs_A():
    node = start_node("-A")
    try:
        with Conn(node.port) as c:
            c.expect(b"shutdown bogus\r\n", b"CLIENT_ERROR invalid shutdown mode\r\n")
            c.send(b"shutdown\r\n")
            assert c.read_to_eof() == b""
        assert node.proc.wait(30) == 0
    finally:
        node.stop()


def test_python_dash_m_entry_point(request):
    port = free_port()
    node = Server([sys.executable, "-m", "pycache_cluster", *node_argv(port)[-5:]], port,
                  env=node_env()).start()
    request.addfinalizer(node.stop)
    with Conn(port) as c:
        c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")


def test_too_many_connections(request):
    node = start_node("-c", "3")
    request.addfinalizer(node.stop)
    conns = [Conn(node.port) for _ in range(3)]
    for c in conns:
        c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
    with Conn(node.port) as extra:
        assert extra.read_to_eof() == b"ERROR Too many open connections\r\n"
    conns.pop().close()
    # Once a slot is free a new client is served (the close is seen asynchronously).
    for _ in range(200):
        with Conn(node.port) as again:
            got = again.send(b"version\r\n").read_until(b"\r\n")
        if got == b"VERSION 1.6.18\r\n":
            break
        assert got == b"ERROR Too many open connections\r\n"
    else:
        pytest.fail("no slot freed after a client closed")
    for c in conns:
        c.close()
    with Conn(node.port) as c:
        stats = dict(re.findall(rb"STAT (\S+) (\S+)\r\n", c.call(b"stats\r\n")))
    assert int(stats[b"rejected_connections"]) >= 1
