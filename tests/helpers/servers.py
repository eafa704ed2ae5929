"""Processes the integration tests talk to: our node started as a user would (the CLI), and
the real memcached binary as the oracle. Both on free loopback ports, always killed."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"


def free_port(host: str = "127.0.0.1", udp: bool = False) -> int:
    """A TCP port free on host right now (bound, read, released); with udp, one whose UDP
    twin is free too (gossip binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if not udp:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((host, port))
                return port
            except OSError:
                continue


def free_ports(n: int, host: str = "127.0.0.1", udp: bool = False) -> list[int]:
    """n distinct free ports (free_port may hand out a port it just released again); with
    udp, the last one's UDP twin is free too (for a gossip port)."""
    out: list[int] = []
    while len(out) < n:
        port = free_port(host, udp=udp and len(out) == n - 1)
        if port not in out:
            out.append(port)
    return out


def raise_nofile(want: int) -> int:
    """Raises this process's soft RLIMIT_NOFILE towards `want` (children inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


#: Every process a test started, so the session can kill those a failing test left behind.
STARTED: list[subprocess.Popen] = []


def kill_leftovers() -> int:
    """SIGKILLs (and reaps) every started process still running (SIGCONT first: a stopped
    one would not die until continued); returns how many there were."""
    left = [p for p in STARTED if p.poll() is None]
    for proc in left:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
        proc.wait(10)
    STARTED.clear()
    return len(left)


class Server:
    """A server process on 127.0.0.1:port; stop() is idempotent and always kills."""

    name = "server"

    def __init__(self, argv: list[str], port: int, env: dict | None = None,
                 host: str = "127.0.0.1"):
        self.argv = argv
        self.port = port
        self.host = host
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Server:
        # Output goes to a file, never a pipe nobody reads (a full pipe would stall the node).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(self.argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     cwd=os.environ.get("PYCACHE_NODE_LIB") or REPO)
        STARTED.append(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                out = self.output()
                raise RuntimeError(f"{self.argv} exited with {self.proc.returncode}: {out}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.argv} did not listen on {self.port}")
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig_first: bool = True) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if sig_first:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def output(self) -> str:
        """Everything the process printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __repr__(self):
        return f"<{self.name} :{self.port}>"


def node_argv(port: int, *extra: str, listen: str = "127.0.0.1") -> list[str]:
    """`python -m pycache_cluster serve ...`, run in the checkout (Server's cwd): the nodes
    are this tree's code whatever is installed (the console script follows the install)."""
    return [sys.executable, "-m", "pycache_cluster", "serve", "-p", str(port), "-l", listen,
            *extra]


def node_env(env: dict | None = None) -> dict | None:
    """PYCACHE_NODE_LIB=<dir> runs nodes from another build of the package (e.g. the
    ASan/UBSan one under build/asan/lib), preloading the sanitizer runtime it needs."""
    lib = os.environ.get("PYCACHE_NODE_LIB")
    if not lib:
        return env
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = lib
    asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, check=False,
                          text=True).stdout.strip()
    if asan and os.path.exists(asan):
        env["LD_PRELOAD"] = asan
        # The extensions' copies of pc_large's shared state are one definition by design.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:detect_odr_violation=1")
    return env


def start_node(*extra: str, port: int | None = None, env: dict | None = None,
               listen: str = "127.0.0.1") -> Server:
    port = port or free_port(listen)
    env = node_env(env)
    s = Server(node_argv(port, *extra, listen=listen), port, env=env, host=listen)
    s.name = "pycache"
    return s.start()


def memcached_available() -> bool:
    return os.path.exists(MEMCACHED)


def start_memcached(*extra: str, port: int | None = None) -> Server:
    port = port or free_port()
    argv = [MEMCACHED, "-p", str(port), "-l", "127.0.0.1", "-U", "0", *extra]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    s = Server(argv, port)
    s.name = "memcached"
    return s.start()
