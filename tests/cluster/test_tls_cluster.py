"""A cluster whose client ports speak only TLS with client certificates required (127.0.0.176-
178, N=2 W=2): its members' peer links are TLS too, so writes through one member are read
through the others, and the replicas' counters show the links carried them."""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys

import pytest
from helpers.certs import CA
from helpers.cluster import NodeProcess, wait_for
from helpers.servers import REPO
from pymemcache.client.base import Client

HOSTS = [f"127.0.0.{i}" for i in (176, 177, 178)]


@pytest.fixture(scope="module")
def tls_fleet(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA(d, "ca")
    member = ca.issue("member", ips=tuple(HOSTS))
    client = ca.issue("client", server=False)
    opts = (f"ssl_chain_cert={member.cert},ssl_key={member.key},ssl_ca_cert={ca.pem},"
            "ssl_verify_mode=2")
    flags = ("-Z", "-o", opts, "--replicas", "2",
             "--write-quorum", "2", "--forward-timeout", "2")
    nodes = [NodeProcess(f"t{i}", host, None, extra=flags) for i, host in enumerate(HOSTS)]
    request.addfinalizer(lambda: [n.stop() for n in nodes])
    for n in nodes:
        n.start(join=[nodes[0].addr] if n is not nodes[0] else [])
    ctx = ssl.create_default_context(cafile=str(ca.pem))
    ctx.load_cert_chain(str(client.cert), str(client.key))

    def converged():
        seen = [stats(n, ctx, "cluster") for n in nodes]
        return all(s.get("ring_nodes") == "3" for s in seen) and \
            len({s.get("ring_checksum") for s in seen}) == 1

    wait_for(converged, 30, "three TLS members on one ring",
             detail=lambda: "\n".join(n.log_tail() for n in nodes))
    nodes[0].pki = {"ca": ca.pem, "cert": client.cert, "key": client.key}
    return nodes, ctx


def stats(node, ctx, which: str) -> dict[str, str]:
    try:
        with socket.create_connection((node.host, node.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=node.host) as s:
            s.sendall(b"stats %s\r\n" % which.encode() if which else b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return {}
                buf += chunk
    except OSError:
        return {}
    return {p[1]: p[2] for p in (line.split() for line in buf.decode().splitlines())
            if len(p) == 3}


def client(node, ctx) -> Client:
    return Client((node.host, node.port), tls_context=ctx, timeout=10)


def test_written_through_one_read_through_the_others(tls_fleet):
    nodes, ctx = tls_fleet
    writer = client(nodes[0], ctx)
    keys = [f"tls:{i}" for i in range(40)]
    for k in keys:
        assert writer.set(k, k.encode() * 3, noreply=False)
    writer.close()
    for node in nodes[1:]:
        reader = client(node, ctx)
        assert reader.get_many(keys) == {k: k.encode() * 3 for k in keys}
        reader.close()


def test_peer_links_are_up_and_carried_replicas(tls_fleet):
    nodes, ctx = tls_fleet
    seen = [stats(n, ctx, "cluster") for n in nodes]
    assert sum(int(s["peer_links_ready"]) for s in seen) >= 2
    assert sum(int(s["replica_writes_acked"]) for s in seen) > 0
    assert all(s["forward_errors"] == "0" for s in seen)


def test_plaintext_peer_is_not_served(tls_fleet):
    nodes, _ = tls_fleet
    # A member's port answers nothing in clear text, the peer handshake included.
    with socket.create_connection((nodes[1].host, nodes[1].port), timeout=15) as s:
        s.sendall(b"cluster peer intruder 1\r\n")
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert got == b"" or b"PEER" not in got


def test_status_over_tls(tls_fleet):
    nodes, ctx = tls_fleet
    pki = nodes[0].pki
    out = subprocess.run([sys.executable, "-m", "pycache_cluster", "status", "--node",
                          f"{nodes[1].host}:{nodes[1].port}", "--json", "--interval", "0.2",
                          "--tls-ca", str(pki["ca"]), "--tls-cert", str(pki["cert"]),
                          "--tls-key", str(pki["key"])],
                         capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert [m["reachable"] for m in view["members"]] == [True, True, True]
    assert view["totals"]["items"] == sum(int(stats(n, ctx, "")["curr_items"]) for n in nodes)
