"""A lock holder in its own process, so a test can SIGSTOP it (the GC-pause case) with its
watchdog frozen too. Driven by lines on stdin, answering on stdout:

    (start)  -> HELD <token> <valid_until>     after acquiring with auto_renew
    write    -> WRITE <token> <lost> <expired>  what it would write; whether its watchdog
                                               declared the lease lost, and whether its own
                                               clock says it ran out (it writes either way:
                                               the resource's fencing must stop it)
    release  -> RELEASED <ok 0|1>              then it exits
usage: lock_holder.py <host:port> <name> <ttl seconds>
"""
import sys
import time

from pycache_cluster.locks.client import LockClient, LockError


def main() -> None:
    address, name, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])
    lease = LockClient([address]).lock(name, ttl=ttl, timeout=10, auto_renew=True)
    lease.acquire()
    print(f"HELD {lease.token} {lease.valid_until}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "write":
            # A holder that checked in time but is lost now would still write: the check
            # and the write are never atomic (that is the point of fencing).
            expired = time.monotonic() >= lease.valid_until
            print(f"WRITE {lease.token} {int(lease.lost.is_set())} {int(expired)}", flush=True)
        elif cmd == "release":
            try:
                lease.release()
                ok = 1
            except LockError:
                ok = 0
            print(f"RELEASED {ok}", flush=True)
            return


if __name__ == "__main__":
    main()
