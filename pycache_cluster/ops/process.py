"""The process around a node, as memcached sets it up before it serves: -r (core files), -u
(leave root), -d (into the background), -k (lock memory), and -P (the pid file), in
memcached's order and with its messages and exit statuses.

Unlike memcached, a node started as root without -u keeps running as root (memcached
refuses to); and -d keeps the working directory (memcached moves to / unless -r), so that
relative paths given to the other flags keep naming the same files.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys

EX_USAGE, EX_NOUSER, EX_OSERR = 64, 67, 71
MCL_CURRENT, MCL_FUTURE = 1, 2


class ProcessError(SystemExit):
    """memcached's message, then its exit status."""

    def __init__(self, message: str, status: int):
        print(message, file=sys.stderr)
        super().__init__(status)


def enable_coredumps() -> None:
    """-r: the core file limit to infinity, else to the hard limit; fails when it stays 0."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        except (ValueError, OSError):
            pass
    if resource.getrlimit(resource.RLIMIT_CORE)[0] == 0:
        raise ProcessError("failed to ensure corefile creation", EX_OSERR)


def become(user: str) -> None:
    """-u: as root, drop supplementary groups and take the user's gid and uid."""
    if os.getuid() != 0 and os.geteuid() != 0:
        return
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ProcessError(f"can't find the user {user} to switch to", EX_NOUSER) from None
    try:
        os.setgroups([])
    except PermissionError as e:     # already minimally privileged: carry on, as memcached
        print(f"failed to drop supplementary groups: {e.strerror}", file=sys.stderr)
    except OSError as e:
        raise ProcessError(f"failed to drop supplementary groups: {e.strerror}",
                           EX_OSERR) from None
    try:
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    except OSError:
        raise ProcessError(f"failed to assume identity of user {user}", EX_OSERR) from None


def daemonize(keep_output: bool) -> None:
    """-d: fork (the parent exits 0 at once), a session of its own, and standard input and
    output on /dev/null unless verbose (memcached's daemonize(): noclose with -v)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    if not keep_output:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)


def lock_memory() -> None:
    """-k: mlockall(); a failure is a warning and the node goes on, as in memcached."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        print(f"warning: -k invalid, mlockall() failed: {os.strerror(err)}", file=sys.stderr)


def save_pid(path: str) -> None:
    """-P: written under a temporary name, then renamed (a reader never sees it empty); a
    pid file naming a running process is warned about, as memcached does."""
    try:
        with open(path) as f:
            old = int(f.read().strip() or 0)
        if old:
            os.kill(old, 0)
            print(f"WARNING: The pid file contained the following (running) pid: {old}",
                  file=sys.stderr)
    except (OSError, ValueError):
        pass
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, path)
    except OSError as e:
        print(f"Could not open the pid file {tmp} for writing: {e.strerror}", file=sys.stderr)


def remove_pid(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as e:
        print(f"Could not remove the pid file {path}: {e.strerror}", file=sys.stderr)


def prepare(cfg) -> None:
    """Everything before the node is made, in memcached's order: -r, -u, -d, -k."""
    if cfg.coredumps:
        enable_coredumps()
    if cfg.user:
        become(cfg.user)
    if cfg.daemon:
        daemonize(keep_output=cfg.verbosity > 0)
    if cfg.lock_memory:
        lock_memory()
