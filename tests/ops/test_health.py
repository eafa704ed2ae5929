"""`pycache-cluster health`, the image's and Kubernetes' probe, as a container runs it: beside
a real node, configured by the same PYCACHE_* variables as that node (or its flags), over
plain TCP, TLS with client certificates required, ascii auth, SASL and a Unix socket; and
readiness, which a leaving member loses while its hand-over runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from helpers.certs import CA
from helpers.cluster import Fleet, wait_for
from helpers.servers import REPO, free_port, start_node

CLI = [sys.executable, "-m", "pycache_cluster"]


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "health", *args], env={**os.environ, **env}, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def _node(request, env: dict[str, str]):
    node = start_node(env={**os.environ, **env}, port=int(env["PYCACHE_PORT"]))
    request.addfinalizer(node.stop)
    return node


def test_live_then_dead_over_plain_tcp(request):
    env = {"PYCACHE_PORT": str(free_port()), "PYCACHE_LISTEN": "127.0.0.1"}
    node = _node(request, env)
    r = health(env)
    assert (r.returncode, r.stdout) == (0, "live\n"), r
    assert health(env, "--ready").stdout == "ready (a node alone)\n"
    node.stop()
    r = health(env)
    assert r.returncode == 1 and r.stdout.startswith("not live"), r


def test_tls_with_client_certificates_required(request, tmp_path):
    ca = CA(tmp_path)
    pair = ca.issue("node")
    env = {"PYCACHE_PORT": str(free_port()), "PYCACHE_LISTEN": "127.0.0.1", "PYCACHE_TLS": "1",
           "PYCACHE_SSL_CHAIN_CERT": str(pair.cert), "PYCACHE_SSL_KEY": str(pair.key),
           "PYCACHE_SSL_CA_CERT": str(ca.pem), "PYCACHE_SSL_VERIFY_MODE": "2"}
    _node(request, env)
    assert health(env).returncode == 0
    # What the image's healthcheck did before: plain text to the port, never answered.
    plain = {k: v for k, v in env.items() if not k.startswith(("PYCACHE_TLS", "PYCACHE_SSL"))}
    assert health(plain).returncode == 1


def test_ascii_auth_and_sasl_nodes(request, tmp_path):
    users = tmp_path / "users"
    users.write_text("probe:s3cret\n")
    env = {"PYCACHE_PORT": str(free_port()), "PYCACHE_LISTEN": "127.0.0.1",
           "PYCACHE_AUTH_FILE": str(users)}
    _node(request, env)
    assert health(env, "--ready").returncode == 0
    env = {"PYCACHE_PORT": str(free_port()), "PYCACHE_LISTEN": "127.0.0.1", "PYCACHE_SASL": "1",
           "PYCACHE_SASL_PWDB": str(users)}
    _node(request, env)
    r = health(env)
    assert (r.returncode, r.stdout) == (0, "live (binary version)\n"), r


def test_unix_socket_and_flags_instead_of_variables(request, tmp_path):
    path = str(tmp_path / "node.sock")
    proc = subprocess.Popen([*CLI, "serve", "-s", path], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    request.addfinalizer(proc.kill)
    wait_for(lambda: os.path.exists(path), 30, "the socket")
    wait_for(lambda: health({}, "-s", path).returncode == 0, 30, "the node live")


def test_a_leaving_member_is_live_but_not_ready(request, tmp_path_factory):
    # A slow hand-over (2 KB/s) makes the leave last its whole --leave-timeout (5 s).
    fleet = Fleet(tmp_path_factory, 239, 2, "-A", "--replicas", "1", "--write-quorum", "1", "--handover-rate", "2000",
                  "--leave-timeout", "5")
    request.addfinalizer(fleet.stop)
    fleet.start()
    leaver = fleet[1]
    flags = ["-p", str(leaver.port), "-l", leaver.host, "--gossip-port",
             str(leaver.gossip_port)]
    r = health({}, "--ready", *flags)
    assert (r.returncode, r.stdout) == (0, "ready: a ring member, active\n"), r
    with fleet[0].conn() as c:
        for i in range(400):
            assert c.call(b"set h%d 0 0 100\r\n%s\r\n" % (i, b"v" * 100)) == b"STORED\r\n"
    assert leaver.call(b"cluster leave\r\n") == b"OK\r\n"
    start = time.monotonic()
    r = health({}, "--ready", *flags)
    assert (r.returncode, r.stdout) == (1, "not ready: leaving\n"), (r, time.monotonic() - start)
    assert health({}, *flags).returncode == 0       # still live: it serves while it leaves
    assert leaver.server.proc.wait(30) == 0
