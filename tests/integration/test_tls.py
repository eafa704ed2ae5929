"""TLS on the client port (memcached's -Z and -o ssl_*): pymemcache and `openssl s_client`
talk to a node process, a client trusting another CA refuses it, plaintext is closed, and
client certificates are enforced as ssl_verify_mode asks."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest
from helpers.certs import CA
from helpers.servers import REPO, free_port, start_node
from pymemcache.client.base import Client


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, other = CA(d, "ca"), CA(d, "other-ca")
    return {"ca": ca, "server": ca.issue("server"), "client": ca.issue("client", server=False),
            "other": other, "stranger": other.issue("stranger", server=False)}


def tls_flags(pki, verify: int = 0) -> tuple[str, ...]:
    opts = f"ssl_chain_cert={pki['server'].cert},ssl_key={pki['server'].key}"
    if verify:
        opts += f",ssl_ca_cert={pki['ca'].pem},ssl_verify_mode={verify}"
    return ("-Z", "-o", opts)


def client_ctx(ca, cert=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.pem))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return ctx


def tls_call(port: int, ctx: ssl.SSLContext, request: bytes, want: bytes) -> bytes:
    """Sends request, reads until `want` ends the reply (or the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(request)
        buf = b""
        while not buf.endswith(want):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


@pytest.fixture(scope="module")
def tls_node(request, pki):
    node = start_node(*tls_flags(pki))
    request.addfinalizer(node.stop)
    return node


def test_pymemcache_over_tls(tls_node, pki):
    c = Client(("127.0.0.1", tls_node.port), tls_context=client_ctx(pki["ca"]), timeout=10)
    try:
        assert c.set("tk", b"v" * 5000)
        assert c.get("tk") == b"v" * 5000
        assert c.get_many(["tk", "nope"]) == {"tk": b"v" * 5000}
        assert c.incr("n", 1) is None
        assert c.add("n", b"1") and c.incr("n", 41) == 42
        assert c.delete("tk") and c.get("tk") is None
    finally:
        c.close()


def test_pipelined_meta_over_tls(tls_node, pki):
    reqs = b"".join(b"ms p%d 2\r\nhi\r\n" % i for i in range(50)) + b"mn\r\n"
    assert tls_call(tls_node.port, client_ctx(pki["ca"]), reqs, b"MN\r\n") == \
        b"HD\r\n" * 50 + b"MN\r\n"


def test_stats_settings_show_the_tls_settings(tls_node, pki):
    out = tls_call(tls_node.port, client_ctx(pki["ca"]), b"stats settings\r\n", b"END\r\n")
    settings = dict(line.split(b" ")[1:3] for line in out.split(b"\r\n")[:-2])
    assert settings[b"ssl_enabled"] == b"yes"
    assert settings[b"ssl_chain_cert"] == str(pki["server"].cert).encode()
    assert settings[b"ssl_key"] == str(pki["server"].key).encode()
    assert (settings[b"ssl_verify_mode"], settings[b"ssl_min_version"]) == (b"0", b"tlsv1.2")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_s_client(tls_node, pki):
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_node.port}", "-CAfile",
         str(pki["ca"].pem), "-verify_return_error", "-quiet", "-ign_eof"],
        input=b"set os 0 0 2\r\nok\r\nget os\r\nversion\r\nquit\r\n", capture_output=True,
        timeout=30, check=False)
    assert out.stdout == b"STORED\r\nVALUE os 0 2\r\nok\r\nEND\r\nVERSION 1.6.18\r\n", out.stderr


def test_a_client_trusting_another_ca_refuses(tls_node, pki):
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_call(tls_node.port, client_ctx(pki["other"]), b"version\r\n", b"\r\n")
    # The node shrugs it off.
    assert tls_call(tls_node.port, client_ctx(pki["ca"]), b"version\r\n", b"\r\n") == \
        b"VERSION 1.6.18\r\n"


def test_plaintext_to_the_tls_port_is_closed(tls_node, pki):
    with socket.create_connection(("127.0.0.1", tls_node.port), timeout=15) as s:
        s.sendall(b"version\r\nget x\r\n")
        got = b""
        while True:     # EOF comes, not a timeout
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    assert b"VERSION" not in got and b"END" not in got
    assert tls_call(tls_node.port, client_ctx(pki["ca"]), b"version\r\n", b"\r\n") == \
        b"VERSION 1.6.18\r\n"


def _refused(port, ctx) -> bool:
    """TLS 1.3 ends the handshake before the server checks the client's certificate: a
    refusal shows as an alert on the first read, or the connection closed unanswered."""
    try:
        return tls_call(port, ctx, b"version\r\n", b"\r\n") == b""
    except (ssl.SSLError, ConnectionError):
        return True


def test_client_certificates_required(request, pki):
    node = start_node(*tls_flags(pki, verify=2))
    request.addfinalizer(node.stop)
    ok = client_ctx(pki["ca"], pki["client"])
    assert tls_call(node.port, ok, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
    assert _refused(node.port, client_ctx(pki["ca"]))
    assert _refused(node.port, client_ctx(pki["ca"], pki["stranger"]))
    assert tls_call(node.port, ok, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"


def test_client_certificates_checked_when_given(request, pki):
    node = start_node(*tls_flags(pki, verify=1))
    request.addfinalizer(node.stop)
    assert tls_call(node.port, client_ctx(pki["ca"]), b"version\r\n", b"\r\n") == \
        b"VERSION 1.6.18\r\n"
    assert tls_call(node.port, client_ctx(pki["ca"], pki["client"]), b"version\r\n",
                    b"\r\n") == b"VERSION 1.6.18\r\n"
    assert _refused(node.port, client_ctx(pki["ca"], pki["stranger"]))


def test_environment_turns_tls_on(pki):
    env = {**os.environ, "PYCACHE_TLS": "1", "PYCACHE_SSL_CHAIN_CERT": str(pki["server"].cert),
           "PYCACHE_SSL_KEY": str(pki["server"].key)}
    node = start_node(env=env)
    try:
        assert tls_call(node.port, client_ctx(pki["ca"]), b"version\r\n", b"\r\n") == \
            b"VERSION 1.6.18\r\n"
        assert f"serving on tls://127.0.0.1:{node.port}" in node.output()
    finally:
        node.stop()


@pytest.mark.parametrize("argv, message", [
    (["-Z"], "TLS (-Z) needs -o ssl_chain_cert"),
    (["-o", "ssl_key=/x"], "ssl_key need TLS on (-Z)"),
    (["-Z", "-o", "ssl_chain_cert=/x,ssl_key=/y,ssl_verify_mode=2"],
     "ssl_verify_mode > 0 needs ssl_ca_cert"),
    (["-o", "hashpower=20"], 'Illegal suboption "hashpower=20"'),
])
def test_bad_settings_are_refused(argv, message):
    out = subprocess.run([sys.executable, "-m", "pycache_cluster", "serve", "-p",
                          str(free_port()), *argv], capture_output=True, text=True,
                         timeout=30, cwd=REPO, check=False)
    assert out.returncode != 0 and message in out.stderr


def test_missing_certificate_file_fails_the_start(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pycache_cluster", "serve", "-p",
                          str(free_port()), "-Z", "-o",
                          f"ssl_chain_cert={tmp_path}/no.crt,ssl_key={tmp_path}/no.key"],
                         capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert out.returncode == 1 and "No such file" in out.stderr
