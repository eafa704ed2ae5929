"""The node as a user runs it: `pycache-cluster serve` flags, PYCACHE_* environment, --help,
--version, clean exit on SIGTERM/SIGINT and on `shutdown` (with -A), connection limit."""
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers.servers import REPO, Server, free_port, node_argv, node_env, start_node
from helpers.wire import Conn

# Decided in Python (the command line): the sanitizer run leaves it out (pyproject.toml).
pytestmark = pytest.mark.python_logic

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
                 "PYCACHE_PORT", "PYCACHE_LISTEN", "PYCACHE_MEMORY_LIMIT",
                 "--gossip-port", "--node-name", "--join", "--cluster-key-file",
                 "--gossip-preset", "--advertise-addr", "--weight", "--vnodes", "--zone",
                 "PYCACHE_ZONE",
                 "--forward-timeout", "--peer-links", "PYCACHE_ADVERTISE_ADDR",
                 "PYCACHE_GOSSIP_PORT", "PYCACHE_NODE_NAME", "PYCACHE_JOIN",
                 "PYCACHE_CLUSTER_KEY_FILE", "PYCACHE_GOSSIP_PRESET", "<hostname>:<port>",
                 "cluster members"):
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


@pytest.mark.parametrize("gossip", [False, True], ids=["alone", "gossip"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(sig, gossip):
    # With gossip the leave is announced first; the reply in flight still arrives whole.
    node = start_node(*(["--gossip-port", str(free_port(udp=True))] if gossip else []))
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


# -- cluster flags ---------------------------------------------------------------------------

def _members(port, host="127.0.0.1"):
    """`cluster members`: asked as soon as the client port accepts, since a node listens only
    once its gossip is up."""
    with Conn(port, host=host) as c:
        return c.call(b"cluster members\r\n")


def _key_file(tmp_path):
    path = tmp_path / "cluster.key"
    path.write_text("# the cluster's key\n" + base64.b64encode(os.urandom(32)).decode() + "\n")
    return path


def test_cluster_flags_reach_the_node(request, tmp_path):
    gport = free_port(udp=True)
    node = start_node("--node-name", "n1", "--gossip-port", str(gport),
                      "--cluster-key-file", str(_key_file(tmp_path)), "--gossip-preset", "local")
    request.addfinalizer(node.stop)
    assert _members(node.port) == b"MEMBER n1 127.0.0.1:%d alive 1\r\nEND\r\n" % gport
    assert "gossip runs in the clear" not in node.output()


def _ring_of_one(port: int) -> bytes:
    """`cluster ring` as soon as the client port accepts: the node is on its own ring then."""
    with Conn(port) as c:
        return c.call(b"cluster ring\r\n")


def test_routing_flags_reach_the_ring(request):
    """--advertise-addr is the address the ring gives out; --weight and --vnodes shape it;
    the same through PYCACHE_* environment variables."""
    gport = free_port(udp=True)
    node = start_node("--node-name", "w1", "--gossip-port", str(gport), "--gossip-preset",
                      "local", "--advertise-addr", "localhost", "--weight", "3",
                      "--vnodes", "10", listen="127.0.0.1")
    request.addfinalizer(node.stop)
    ring = _ring_of_one(node.port)
    assert ring.startswith(b"RING epoch=1 checksum=")
    assert b" vnodes=10 nodes=1 status=active handover=idle handover_walks=0 " \
        b"handover_keys_sent=0\r\n" in ring
    assert ring.endswith(b"NODE w1 127.0.0.1:%d weight=3 share=1.000000\r\nEND\r\n" % node.port)
    port, gport = free_port(), free_port(udp=True)
    env = dict(os.environ, PYCACHE_PORT=str(port), PYCACHE_GOSSIP_PORT=str(gport),
               PYCACHE_NODE_NAME="w2", PYCACHE_WEIGHT="2", PYCACHE_VNODES="5",
               PYCACHE_FORWARD_TIMEOUT="0.5", PYCACHE_PEER_LINKS="2",
               PYCACHE_GOSSIP_PRESET="local")
    other = Server([*CLI, "serve"], port, env=node_env(env)).start()
    request.addfinalizer(other.stop)
    ring = _ring_of_one(port)
    assert b" vnodes=5 nodes=1 status=active " in ring
    assert b"\r\nNODE w2 127.0.0.1:%d weight=2 " % port in ring


def test_cluster_environment_variables(request, tmp_path):
    # Two nodes, the second joining the first through PYCACHE_JOIN, both keyed by env.
    key = _key_file(tmp_path)
    nodes = []
    for name, join in (("e1", ""), ("e2", None)):
        port, gport = free_port(), free_port(udp=True)
        env = dict(os.environ, PYCACHE_PORT=str(port), PYCACHE_NODE_NAME=name,
                   PYCACHE_GOSSIP_PORT=str(gport), PYCACHE_CLUSTER_KEY_FILE=str(key),
                   PYCACHE_GOSSIP_PRESET="local",
                   PYCACHE_JOIN=join if join is not None else f"127.0.0.1:{nodes[0][1]}")
        node = Server([*CLI, "serve"], port, env=node_env(env)).start()
        request.addfinalizer(node.stop)
        nodes.append((node, gport))
    want = b"MEMBER e1 127.0.0.1:%d alive 1\r\nMEMBER e2 127.0.0.1:%d alive 1\r\nEND\r\n" % (
        nodes[0][1], nodes[1][1])
    for _ in range(300):
        if _members(nodes[0][0].port) == want:
            break
        time.sleep(0.02)
    assert _members(nodes[0][0].port) == want


def test_default_node_name_and_clear_text_warning(request):
    node = start_node("--gossip-port", str(free_port(udp=True)))
    request.addfinalizer(node.stop)
    name = f"{socket.gethostname()}:{node.port}".encode()
    assert _members(node.port).startswith(b"MEMBER " + name + b" ")
    assert "gossip runs in the clear" in node.output()


@pytest.mark.parametrize("argv, message", [
    (["--node-name", "x"], "--node-name needs --gossip-port"),
    (["--join", "127.0.0.1:7946"], "--join needs --gossip-port"),
    (["--gossip-port", "7946", "--join", "a:b"], "join seed 'a:b'"),
    (["--gossip-port", "7946", "--node-name", "a b"], "contains whitespace"),
    (["--gossip-port", "70000"], "gossip port 70000 is out of range"),
    (["--advertise-addr", "10.0.0.1"], "--advertise-addr needs --gossip-port"),
    (["--gossip-port", "7946", "--weight", "0"], "weight 0 is out of range 1..100"),
    (["--gossip-port", "7946", "--vnodes", "0"], "vnodes 0 is out of range"),
    (["--gossip-port", "7946", "--forward-timeout", "0"], "forward timeout 0.0 must be"),
    (["--gossip-port", "7946", "--peer-links", "17"], "peer links 17 is out of range"),
    (["--gossip-port", "7946", "--advertise-addr", "a b"], "is not an address"),
    (["--zone", "a"], "--zone needs --gossip-port"),
    (["--gossip-port", "7946", "--zone", "eu west"], "zone 'eu west': 1-64 characters"),
])
def test_bad_cluster_flags_are_refused(argv, message):
    out = subprocess.run([*CLI, "serve", "-p", str(free_port()), *argv], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False)
    assert out.returncode == 2
    assert message in out.stderr


def test_gossip_presets_are_the_librarys():
    from pycache_cluster.config import GOSSIP_PRESETS
    from pycache_cluster.gossip.config import PRESETS

    assert set(GOSSIP_PRESETS) == set(PRESETS)


def test_bad_key_file_is_refused(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!\n")
    for path, message in ((bad, "not base64"), (tmp_path / "missing.key", "No such file")):
        out = subprocess.run([*CLI, "serve", "-p", str(free_port()), "--gossip-port",
                              str(free_port(udp=True)), "--cluster-key-file", str(path)],
                             capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
        assert out.returncode == 1
        assert message in out.stderr



def test_installed_console_script(request):
    """`pycache-cluster`, as `make build` installs it, starts a node."""
    import shutil

    exe = shutil.which("pycache-cluster")
    if exe is None:
        pytest.skip("pycache-cluster is not on PATH (make build installs it)")
    port = free_port()
    node = Server([exe, "serve", "-p", str(port)], port).start()
    request.addfinalizer(node.stop)
    with Conn(node.port) as c:
        c.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
