"""Server processes under test: memcached and our node on free loopback ports; their CPU and RSS.

Every process started here is registered and killed on exit (normal return, exception, Ctrl-C or
SIGTERM): use `ServerProcess` as a context manager, and `install_signal_handlers()` once in main.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Self

HOST = "127.0.0.1"
# The checkout: servers and helper processes run here, so `-m pycache_cluster` and `-m bench`
# resolve to this tree whatever the caller's directory.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

MEMCACHED_CMD = "memcached -t 1 -l {host} -p {port} -m {mb} -I {item_size}"
# Our node takes memcached's flags. `{python}` is this interpreter, so a venv is honoured.
OURS_CMD = "{python} -m pycache_cluster serve -l {host} -p {port} -m {mb} -I {item_size}"

_LIVE: set[subprocess.Popen] = set()


def free_port() -> int:
    """A TCP port that was free a moment ago (start() retries if someone takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class CpuSample:
    """Process-wide (all threads) CPU time in seconds, from /proc/<pid>/stat."""

    user: float
    sys: float

    @property
    def total(self) -> float:
        return self.user + self.sys

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(self.user - other.user, self.sys - other.sys)


def read_cpu(pid: int) -> CpuSample:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return CpuSample(int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK)


def read_rss(pid: int) -> int:
    """Current resident set size in bytes (/proc/<pid>/statm)."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def read_peak_rss(pid: int) -> int:
    """Peak resident set size (VmHWM) in bytes."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def wait_rss_stable(pid: int, interval: float = 0.25, samples: int = 4,
                    timeout: float = 30.0) -> int:
    """RSS once it has not changed for `samples` consecutive reads (memcached grows its hash
    table and slabs from background threads after the last reply)."""
    deadline = time.monotonic() + timeout
    last, same = read_rss(pid), 0
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = read_rss(pid)
        same = same + 1 if now == last else 0
        last = now
        if same >= samples - 1:
            break
    return last


class ServerProcess:
    """One server (memcached or ours) on a free loopback port; a context manager that always
    kills it."""

    def __init__(self, name: str, template: str, mb: int, item_size: str = "1m",
                 extra: str = "", env: dict | None = None) -> None:
        self.name = name
        self.env = env
        self.template = template
        self.mb = mb
        self.item_size = item_size
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def argv(self, port: int) -> list[str]:
        cmd = self.template.format(python=sys.executable, host=HOST, port=port, mb=self.mb,
                                   item_size=self.item_size)
        argv = shlex.split(cmd) + shlex.split(self.extra)
        # memcached refuses to run as root without -u.
        if os.path.basename(argv[0]) == "memcached" and os.geteuid() == 0 and "-u" not in argv:
            argv += ["-u", "root"]
        return argv

    def start(self, timeout: float = 20.0) -> ServerProcess:
        last_err = ""
        for _attempt in range(5):
            port = free_port()
            argv = self.argv(port)
            if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
                raise RuntimeError(f"{self.name}: {argv[0]!r} not found (run `make sysdeps`)")
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True, cwd=ROOT,
                                    env=self.env)
            _LIVE.add(proc)
            self.proc, self.port = proc, port
            if self._wait_ready(timeout):
                return self
            last_err = self._stderr_tail()
            self.stop()
        raise RuntimeError(f"{self.name} did not start: {' '.join(argv)}\n{last_err}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(self.address, timeout=1.0) as s:
                    s.sendall(b"version\r\n")
                    if s.recv(64).startswith(b"VERSION"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def _stderr_tail(self) -> str:
        try:
            _, err = self.proc.communicate(timeout=1.0)
            return (err or b"").decode(errors="replace")[-2000:]
        except Exception:  # noqa: BLE001 - diagnostics only
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            kill_process(proc)

    def cpu(self) -> CpuSample:
        return read_cpu(self.pid)

    def rss(self) -> int:
        return read_rss(self.pid)

    def peak_rss(self) -> int:
        return read_peak_rss(self.pid)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def kill_process(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Terminate `proc` (and its session), escalating to SIGKILL; reap it."""
    try:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=grace)
        else:
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    finally:
        _LIVE.discard(proc)


def register(proc: subprocess.Popen) -> subprocess.Popen:
    """Track a helper process (load generator) so that kill_all() ends it too."""
    _LIVE.add(proc)
    return proc


def kill_all() -> None:
    for proc in list(_LIVE):
        kill_process(proc, grace=1.0)


def install_signal_handlers() -> None:
    """SIGINT (even when a background job inherited it ignored), SIGTERM and SIGHUP unwind like
    Ctrl-C, so every `finally` runs and the servers die."""
    def _raise(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)
