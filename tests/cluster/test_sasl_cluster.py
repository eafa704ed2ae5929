"""SASL (-S) in a cluster: binary clients authenticate with PLAIN on any node and are served
every key, replicated; peer links prove the cluster key over text instead, and a text
connection that is not a proven peer gets nothing."""
import base64
import os
import subprocess

import pytest
from helpers.binary import GET, GETK, NOOP, SASL_AUTH, SETQ, call, exchange, req, store
from helpers.cluster import NodeProcess, wait_for
from helpers.servers import REPO, node_argv
from helpers.wire import Conn

AUTH_ERROR = 0x20
KEYS = [b"sasl-%d" % i for i in range(40)]


def authed(node: NodeProcess) -> Conn:
    c = Conn(node.port, host=node.host)
    (ok,) = call(c, req(SASL_AUTH, b"PLAIN", value=b"\0alice\0secret"))
    assert (ok.status, ok.value) == (0, b"Authenticated")
    return c


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("saslcluster")
    key, pwdb = tmp / "cluster.key", tmp / "pwdb"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    pwdb.write_text("alice:secret\n")
    nodes = [NodeProcess(f"sa{i}", f"127.0.0.{207 + i}", key,
                         extra=("-S", "--sasl-pwdb", str(pwdb))) for i in range(3)]
    for n in nodes:
        request.addfinalizer(n.stop)
    nodes[0].start()
    for n in nodes[1:]:
        n.start(join=[nodes[0].addr])

    def served_everywhere():
        # Writes need W=2 owners and reads find them through every node: the ring is whole.
        with authed(nodes[0]) as c:
            if call(c, b"".join(store(SETQ, k, k) for k in KEYS)):
                return False
        for n in nodes:
            with authed(n) as c:
                if [f.value for f in call(c, b"".join(req(GETK, k) for k in KEYS))] != KEYS:
                    return False
        return True
    wait_for(served_everywhere, 30, "every key served through every node")
    return nodes


def test_authenticated_binary_clients_are_served_every_key_through_any_node(fleet):
    with authed(fleet[1]) as c:
        assert call(c, store(SETQ, b"from-1", b"one")) == []
    for node in fleet:
        with authed(node) as c:
            (got,) = call(c, req(GET, b"from-1"))
            assert (got.status, got.value) == (0, b"one")


def test_unauthenticated_binary_is_refused_on_every_node(fleet):
    for node in fleet:
        got = exchange(node.port, req(GET, KEYS[0]) + req(NOOP), host=node.host)
        assert got[1] == GET and got[6:8] == AUTH_ERROR.to_bytes(2, "big")


def test_text_is_closed_unless_it_is_a_proven_peer(fleet):
    node = fleet[2]
    assert exchange(node.port, b"get " + KEYS[0] + b"\r\n", host=node.host) == b""
    # A peer's handshake without the cluster key proves nothing, and nothing else is read.
    with Conn(node.port, host=node.host) as c:
        c.send(b"cluster peer intruder 00\r\n")
        assert c.read_until(b"\r\n").startswith(b"PEER sa2 ")
        c.send(b"cluster auth 00\r\n")
        assert c.read_until(b"\r\n").startswith(b"CLIENT_ERROR")
        c.send(b"get " + KEYS[0] + b"\r\n")
        assert c.sock.recv(4096) == b""
    # A handshake line that never ends is closed after memcached's 2048 bytes, not read on.
    with Conn(node.port, host=node.host) as c:
        c.send(b"cluster peer " + b"x" * 5000)
        assert c.sock.recv(4096) == b""


def test_sasl_in_a_cluster_needs_the_cluster_key(tmp_path):
    pwdb = tmp_path / "pwdb"
    pwdb.write_text("alice:secret\n")
    argv = node_argv(0, "-S", "--sasl-pwdb", str(pwdb), "--gossip-port", "0",
                     listen="127.0.0.1")
    out = subprocess.run(argv, capture_output=True, timeout=30, check=False, cwd=REPO)
    assert out.returncode != 0
    assert b"needs --cluster-key-file" in out.stdout + out.stderr
