"""Packaging as a user meets it: `python -m build` makes an sdist and, from it, a wheel;
auditwheel repairs the wheel for the manylinux tag this glibc allows; each installs into a
clean virtual environment and serves; `make serve` on Debian's own, externally managed
Python makes and uses .venv. The builds (helpers/packaging.py) run in copies of this
checkout's files, never in the checkout itself, and begin in the background as soon as the
session has collected this module."""
from __future__ import annotations

import signal
import socket
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from helpers import packaging
from helpers.packaging import DEBIAN_PYTHON
from helpers.servers import STARTED, free_port

# The builds may still run when this module starts (a short session): wait them out.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(packaging.TIMEOUT + 60)]


def _run(argv, log: Path, **kw) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 (the process's output, read back on failure)
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
    STARTED.append(proc)
    return proc


def _talk(port: int, request: bytes, until: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        buf = b""
        while not buf.endswith(until):
            chunk = s.recv(65536)
            assert chunk, buf
            buf += chunk
    return buf


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode}:\n{log.read_text()[-6000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-6000:]
            time.sleep(0.1)


def smoke(bin_dir: Path, work: Path) -> None:
    """The installed console script serves memcached's protocol from the installed package
    (run outside any checkout), and stops cleanly on SIGTERM."""
    where = subprocess.run([bin_dir / "python", "-c",
                            "import pycache_cluster.protocol._conn as m; print(m.__file__)"],
                           cwd=work, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(bin_dir.parent)), where
    version = subprocess.run([bin_dir / "pycache-cluster", "--version"], cwd=work,
                             capture_output=True, text=True, check=True).stdout
    assert "memcached 1.6.18 protocol" in version
    port = free_port()
    log = work / f"serve-{port}.log"
    proc = _run([bin_dir / "pycache-cluster", "serve", "-p", str(port)], log, cwd=work)
    _wait_port(port, proc, log, 30)
    assert _talk(port, b"set k 0 0 2\r\nhi\r\nget k\r\n", b"END\r\n") == \
        b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()


@pytest.fixture(scope="module")
def built():
    """The finished builds (helpers/packaging.py), begun at collection."""
    return packaging.start().wait()


def test_sdist_holds_what_the_build_needs(built):
    with tarfile.open(built.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("LICENSE", "setup.py", "csrc/pc_store.h", "csrc/pc_wbuf.h",
                   "pycache_cluster/protocol/_text.pxi", "pycache_cluster/protocol/_conn.pxd",
                   "pycache_cluster/cluster/_link.pyx"):
        assert needed in names, needed
    assert not any(n.endswith(".so") for n in names)


def test_wheel_is_repaired_for_manylinux(built):
    repaired = built.repaired.name
    assert "-manylinux_" in repaired and repaired.endswith("_x86_64.whl"), repaired
    with zipfile.ZipFile(built.repaired) as z:
        names = z.namelist()
    assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names)
    assert any(n.startswith("pycache_cluster/protocol/_conn.") and n.endswith(".so")
               for n in names)


def test_repaired_wheel_installs_and_serves_in_a_clean_venv(built):
    smoke(built.root / "venv-wheel" / "bin", built.root)


def test_sdist_installs_and_serves_in_a_clean_venv(built):
    smoke(built.root / "venv-sdist" / "bin", built.root)


def test_make_serve_makes_a_venv_on_an_externally_managed_python(built):
    if built.make is None:
        pytest.skip(f"{DEBIAN_PYTHON} is not installed (apt-get install python3-venv)")
    probe = ("import os, sysconfig; print(os.path.exists(os.path.join("
             "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))")
    marker = subprocess.run([DEBIAN_PYTHON, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    if marker != "True":
        pytest.skip(f"{DEBIAN_PYTHON} is not externally managed here")
    tree, log = built.root / "make", built.log("make")
    _wait_port(built.make_port, built.make, log, packaging.TIMEOUT)
    assert _talk(built.make_port, b"version\r\n", b"\r\n").startswith(b"VERSION 1.6.18")
    assert (tree / ".venv" / "bin" / "python").exists()
    # The node runs on the venv's interpreter, which is Debian's underneath.
    venv_cfg = (tree / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in venv_cfg, venv_cfg
    assert ".venv/bin/python -m pycache_cluster serve" in log.read_text()
