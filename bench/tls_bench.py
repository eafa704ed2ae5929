"""What TLS costs a node: server CPU per get over TLS beside plain TCP, in the same run.

    python -m bench.tls_bench [--seconds 4] [--rounds 3] [--conns 8]

Two nodes, one plain and one with -Z (a certificate made here, ECDSA P-256, TLS 1.3), each
loaded in turn by the same closed-loop asyncio client (uvloop) with `--conns` connections
and 100-byte values: `get` (one request per round trip: one TLS record each way per get, the
worst case) and `get x16` (16 pipelined gets per write, records carry many replies). Rounds
alternate the scenarios; the table shows medians of throughput and CPU microseconds per get
(user + sys of the server process, from /proc), and TLS over plain for each workload.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import servers

VALUE = b"v" * 100
KEYS = [b"tls:%d" % i for i in range(2000)]


def make_cert(directory: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    crt, pem = directory / "bench.crt", directory / "bench.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return str(crt), str(pem)


class TlsServer(servers.ServerProcess):
    """Our node with -Z: ready once it accepts (its port answers no plaintext `version`)."""

    def _wait_ready(self, timeout: float) -> bool:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(self.address, timeout=1.0).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False


async def load(port: int, ctx, seconds: float, conns: int, depth: int) -> int:
    """Gets answered in `seconds` by `conns` closed-loop connections, `depth` per write."""
    deadline = time.monotonic() + seconds
    counts = []

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection(servers.HOST, port, ssl=ctx)
        n, k = 0, i
        while time.monotonic() < deadline:
            batch = []
            for _ in range(depth):
                batch.append(b"get " + KEYS[k % len(KEYS)] + b"\r\n")
                k += 7
            writer.write(b"".join(batch))
            for _ in range(depth):
                await reader.readuntil(b"END\r\n")
            n += depth
        writer.close()
        counts.append(n)

    await asyncio.gather(*(one(i) for i in range(conns)))
    return sum(counts)


async def preload(port: int, ctx) -> None:
    reader, writer = await asyncio.open_connection(servers.HOST, port, ssl=ctx)
    writer.write(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(VALUE), VALUE)
                          for k in KEYS) + b"mn\r\n")
    await reader.readuntil(b"MN\r\n")
    writer.close()


def measure(node, ctx, args, depth: int) -> dict:
    before = servers.read_cpu(node.pid)
    t0 = time.monotonic()
    ops = asyncio.run(load(node.port, ctx, args.seconds, args.conns, depth))
    elapsed = time.monotonic() - t0
    cpu = (servers.read_cpu(node.pid) - before).total
    return {"ops_per_sec": ops / elapsed, "cpu_us_per_op": cpu / ops * 1e6}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tls_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conns", type=int, default=8)
    args = p.parse_args(argv)
    servers.install_signal_handlers()
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with tempfile.TemporaryDirectory() as d:
        crt, key = make_cert(Path(d))
        plain = servers.ServerProcess("plain", servers.OURS_CMD, 256).start()
        tls = TlsServer("tls", servers.OURS_CMD, 256,
                        extra=f"-Z -o ssl_chain_cert={crt},ssl_key={key}").start()
        client = ssl.create_default_context(cafile=crt)
        client.check_hostname = False
        try:
            asyncio.run(preload(plain.port, None))
            asyncio.run(preload(tls.port, client))
            scenarios = {(work, name): (node, ctx, depth)
                         for work, depth in (("get", 1), ("get x16", 16))
                         for name, node, ctx in (("tcp", plain, None), ("tls", tls, client))}
            results: dict = {k: [] for k in scenarios}
            for r in range(args.rounds):
                for key, (node, ctx, depth) in scenarios.items():
                    results[key].append(measure(node, ctx, args, depth))
                    print(f"round {r + 1}: {key[0]:8} {key[1]:4} "
                          f"{results[key][-1]['cpu_us_per_op']:.2f} us/get", file=sys.stderr)
        finally:
            tls.stop()
            plain.stop()
    print(f"\n{args.rounds} rounds x {args.seconds:g} s, {args.conns} connections; medians")
    print(f"{'workload':9} {'port':5} {'gets/s':>9} {'CPU us/get':>11} {'TLS / TCP':>10}")
    for (work, name), runs in results.items():
        med = {m: statistics.median(x[m] for x in runs) for m in ("ops_per_sec", "cpu_us_per_op")}
        base = statistics.median(x["cpu_us_per_op"] for x in results[(work, "tcp")])
        ratio = f"{med['cpu_us_per_op'] / base:.2f}x" if name == "tls" else ""
        print(f"{work:9} {name:5} {med['ops_per_sec']:>9,.0f} {med['cpu_us_per_op']:>11.2f} "
              f"{ratio:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
