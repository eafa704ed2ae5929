"""The mixed-size flood of issue 14, and RSS sampled while it runs.

    python -m bench.flood [--server ours|memcached] [--mb 64] [--seconds 30] [--conns 8]
                          [--keys 200000] [--env NAME=VALUE ...] [--idle-conns 0]

A flood is `conns` client connections, each sending `set` requests one at a time (waiting for
STORED) for keys drawn uniformly from `keys` and values of a log-uniform size in
[min_size, max_size] (each size class of a doubling gets the same number of sets, so the bytes
sent are dominated by the large values). The server's RSS is read from /proc every
`interval` seconds from before the first set (the idle baseline) until the connections have
closed, as an operator watching a container would. Stdlib only: the memory tests use it too.

`--idle-conns N` runs the other pattern instead: N connections each send one value of
max_size, then stay open and idle.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import sys
import threading
import time

MIN_SIZE, MAX_SIZE = 10, 1_000_000
KEYS = 200_000
CONNS = 8

_PAGE = os.sysconf("SC_PAGE_SIZE")
_BIG = b"f" * MAX_SIZE


def read_rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # Split after the command name's closing parenthesis: fields[0] is field 3 (state).
    return data[data.rindex(b")") + 2:].split()


def read_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process (all threads)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_minor_faults(pid: int) -> int:
    return int(_stat_fields(pid)[7])


def log_uniform(rng: random.Random, lo: int = MIN_SIZE, hi: int = MAX_SIZE) -> int:
    return min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))


class RssSampler:
    """Reads a process's RSS every `interval` seconds in a thread; keeps every sample."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> int:
        try:
            rss = read_rss(self.pid)
        except OSError:
            return 0
        self.samples.append((round(time.monotonic() - self._t0, 2), rss))
        return rss

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak(self) -> int:
        return max((r for _, r in self.samples), default=0)


def _recv_line(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def _worker(address, seed: int, keys: int, lo: int, hi: int, stop: threading.Event,
            counts: dict, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    big = memoryview(_BIG)
    sets = sent = errors = 0
    with socket.create_connection(address, timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            n = log_uniform(rng, lo, hi)
            head = b"set fl:%d 0 0 %d\r\n" % (rng.randrange(keys), n)
            s.sendall(head)
            s.sendall(big[:n])
            s.sendall(b"\r\n")
            reply = _recv_line(s)
            sets += 1
            sent += n
            if reply != b"STORED\r\n":
                errors += 1
    with lock:
        counts["sets"] += sets
        counts["value_bytes"] += sent
        counts["errors"] += errors


def flood(address, seconds: float, conns: int = CONNS, keys: int = KEYS, lo: int = MIN_SIZE,
          hi: int = MAX_SIZE, seed: int = 14) -> dict:
    """Runs the flood for `seconds`; returns the client's counts. Connections are closed when
    it returns."""
    stop, lock = threading.Event(), threading.Lock()
    counts = {"sets": 0, "value_bytes": 0, "errors": 0}
    threads = [threading.Thread(target=_worker, args=(address, seed * 1000 + i, keys, lo, hi,
                                                      stop, counts, lock), daemon=True)
               for i in range(conns)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(120)
    counts["seconds"] = seconds
    return counts


def idle_big_values(address, conns: int, size: int = MAX_SIZE, idle: float = 5.0,
                    on_idle=None) -> dict:
    """`conns` connections each send one `size`-byte set, read STORED, then stay open and
    idle for `idle` seconds (on_idle() is called then), and close."""
    socks, stored = [], 0
    value = memoryview(_BIG if size <= len(_BIG) else b"f" * size)[:size]
    try:
        for i in range(conns):
            s = socket.create_connection(address, timeout=60)
            socks.append(s)
            s.sendall(b"set idle:%d 0 0 %d\r\n" % (i, size))
            s.sendall(value)
            s.sendall(b"\r\n")
        for s in socks:
            stored += _recv_line(s) == b"STORED\r\n"
        deadline = time.monotonic() + idle
        if on_idle is not None:
            on_idle()
        time.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        for s in socks:
            s.close()
    return {"conns": conns, "stored": stored}


def stats(address, group: str = "") -> dict[str, str]:
    with socket.create_connection(address, timeout=30) as s:
        s.sendall(b"stats %s\r\n" % group.encode() if group else b"stats\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n") and not buf.endswith(b"ERROR\r\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
    out = {}
    for line in buf.split(b"\r\n"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and parts[0] == b"STAT":
            out[parts[1].decode()] = parts[2].decode()
    return out


def settle(pid: int, seconds: float = 3.0, interval: float = 0.25) -> int:
    """RSS after it has stopped moving (or after `seconds`)."""
    deadline = time.monotonic() + seconds
    last = read_rss(pid)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = read_rss(pid)
        if now == last:
            return now
        last = now
    return last


def measure(pid: int, address, mb: int, seconds: float, conns: int = CONNS, keys: int = KEYS,
            idle_conns: int = 0, probe_groups: tuple[str, ...] = ()) -> dict:
    """Idle baseline, the flood (or the idle-connection pattern) with RSS sampled each second,
    then RSS once the connections have closed. Figures in bytes."""
    baseline = settle(pid)
    sampler = RssSampler(pid).start()
    probes: list[dict] = []
    probe_stop = threading.Event()

    def probe():
        # Allocator/buffer breakdowns while the load runs (only groups the server has).
        while not probe_stop.wait(5.0):
            snap = {"rss": read_rss(pid)}
            for g in probe_groups:
                snap.update({f"{g}.{k}": v for k, v in stats(address, g).items()})
            probes.append(snap)

    cpu0, faults0 = read_cpu_seconds(pid), read_minor_faults(pid)
    prober = threading.Thread(target=probe, daemon=True)
    if probe_groups:
        prober.start()
    if idle_conns:
        load = idle_big_values(address, idle_conns, idle=seconds)
    else:
        load = flood(address, seconds, conns=conns, keys=keys)
    cpu, faults = read_cpu_seconds(pid) - cpu0, read_minor_faults(pid) - faults0
    probe_stop.set()
    if probe_groups:
        prober.join()
    st = stats(address)
    sampler.stop()
    # The node gives freed memory back on a one-second timer: let two rounds pass first.
    time.sleep(2.5)
    after_close = settle(pid, 5.0)
    limit = mb << 20
    peak = max(sampler.peak, after_close)
    return {"mb": mb, "baseline_rss": baseline, "peak_rss": peak, "after_close_rss": after_close,
            "peak_over_baseline": peak - baseline,
            "peak_ratio": (peak - baseline) / limit, "peak_ratio_total": peak / limit,
            "after_ratio": (after_close - baseline) / limit,
            "curr_items": int(st.get("curr_items", 0)), "bytes": int(st.get("bytes", 0)),
            "evictions": int(st.get("evictions", 0)), "load": load, "server_cpu_s": cpu,
            "cpu_us_per_set": cpu * 1e6 / max(load.get("sets", load.get("conns", 1)), 1),
            "faults_per_set": faults / max(load.get("sets", load.get("conns", 1)), 1),
            "samples": sampler.samples, "probes": probes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", choices=("ours", "memcached"), default="ours")
    p.add_argument("--mb", type=int, default=64)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--conns", type=int, default=CONNS)
    p.add_argument("--keys", type=int, default=KEYS)
    p.add_argument("--idle-conns", type=int, default=0)
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment of the server process (e.g. LD_PRELOAD, MALLOC_CONF)")
    p.add_argument("--probe", action="append", default=[], metavar="GROUP",
                   help="`stats GROUP` to record every 5 s (e.g. memory)")
    args = p.parse_args(argv)
    from bench import servers
    template = servers.OURS_CMD if args.server == "ours" else servers.MEMCACHED_CMD
    if args.idle_conns:
        from pycache_cluster.node import raise_fd_limit
        raise_fd_limit(args.idle_conns + 64)
    env = dict(os.environ, **dict(e.split("=", 1) for e in args.env)) if args.env else None
    servers.install_signal_handlers()
    try:
        extra = f"-c {args.idle_conns + 64}" if args.idle_conns else ""
        with servers.ServerProcess(args.server, template, args.mb, extra=extra,
                                   env=env) as srv:
            res = measure(srv.pid, srv.address, args.mb, args.seconds, args.conns, args.keys,
                          args.idle_conns, tuple(args.probe))
    finally:
        servers.kill_all()
    res["server"], res["env"] = args.server, args.env
    mib = 1 << 20
    print(f"{args.server} -m {args.mb} {args.env or ''}: baseline {res['baseline_rss'] / mib:.1f}"
          f" MiB, peak {res['peak_rss'] / mib:.1f} MiB (+{res['peak_over_baseline'] / mib:.1f}, "
          f"{res['peak_ratio']:.3f}x the limit over baseline, {res['peak_ratio_total']:.3f}x "
          f"total), after close {res['after_close_rss'] / mib:.1f} MiB; items "
          f"{res['curr_items']}, bytes {res['bytes'] / mib:.1f} MiB, load {res['load']}, "
          f"server CPU {res['server_cpu_s']:.1f} s = {res['cpu_us_per_set']:.1f} us/set, "
          f"{res['faults_per_set']:.1f} page faults/set",
          file=sys.stderr)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
