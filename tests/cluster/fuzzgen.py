"""The cluster differential fuzz's generator: short seeded sequences of memcached commands
(valid, odd and malformed forms) over a few keys, each sequence starting from flush_all, and
a shrinker that keeps the smallest sequence whose replies still differ. Shared by the test
(tests/cluster/test_cluster_fuzz.py, a bounded number of sequences) and the long run
(bench/cluster_fuzz.py)."""
from __future__ import annotations

import random

# Few keys, so that a command meets a key set before; "c" and "n" as in the reports.
KEYS = [b"c", b"b", b"n", b"a", b"Zm9v", b"q1"]
FLAGS = [b"0", b"5", b"42", b"4294967295", b"4294967296", b"-1", b"x"]
EXPTIME = [b"0", b"0", b"-1", b"100", b"2592000", b"2592001", b"99999999999", b"1000000000",
           b"2000000000", b"x", b"-99999999999"]
DELTA = [b"0", b"1", b"7", b"18446744073709551615", b"18446744073709551616", b"-1", b"x"]
NOREPLY = [b"", b"", b"", b" noreply", b" NOREPLY", b" noreply x", b" x"]
MG = [b"v", b"f", b"t", b"c", b"s", b"k", b"h", b"l", b"O9", b"q", b"T30", b"T-1", b"N30",
      b"E5", b"R30", b"x", b"b", b"Zz"]
MS = [b"T0", b"T100", b"F3", b"c", b"k", b"O7", b"q", b"I", b"MS", b"ME", b"MA", b"MP", b"MR",
      b"Mx", b"C1", b"C99999999", b"E5", b"E18446744073709551616", b"b", b"S3", b"x"]
MA = [b"N0", b"N100", b"J5", b"D3", b"Dx", b"MI", b"MD", b"M+", b"v", b"t", b"c", b"q", b"k",
      b"O3", b"C99", b"E7", b"b"]
MD = [b"q", b"k", b"O1", b"C99999999", b"C0", b"I", b"T100", b"x", b"E9", b"b"]


def _flags(r: random.Random, pool: list[bytes]) -> bytes:
    return b"".join(b" " + r.choice(pool) for _ in range(r.randint(0, 4)))


def value(r: random.Random) -> bytes:
    if r.random() < 0.3:
        return b"%d" % r.choice([0, 1, 10, 99, 18446744073709551615])
    return bytes(r.choice(b"abcxyz") for _ in range(r.randint(0, 6)))


def storage(r: random.Random, key: bytes) -> bytes:
    cmd = r.choice([b"set", b"set", b"add", b"replace", b"append", b"prepend", b"cas"])
    v = value(r)
    n = len(v) + r.choice([0] * 10 + [-1, 1])
    line = b"%s %s %s %s %d" % (cmd, key, r.choice(FLAGS), r.choice(EXPTIME[:6]), n)
    if cmd == b"cas":
        line += b" " + r.choice([b"0", b"1", b"99999999", b"x"])
    line += r.choice(NOREPLY)
    return line + b"\r\n" + v + r.choice([b"\r\n"] * 12 + [b"\n", b"xx"])


def command(r: random.Random) -> bytes:
    key = r.choice(KEYS)
    kind = r.randint(0, 13)
    if kind <= 2:
        return storage(r, key)
    if kind == 3:
        cmd = r.choice([b"get", b"gets", b"gat", b"gats"])
        parts = [cmd] + ([r.choice(EXPTIME)] if cmd.startswith(b"gat") else [])
        return b" ".join(parts + r.sample(KEYS, r.randint(1, 3))) + b"\r\n"
    if kind == 4:
        extra = r.choice([b"", b"", b" 0", b" 1", b" noreply", b" 0 noreply", b" 0 NOREPLY",
                          b" x y", b" noreply x"])
        return b"delete " + key + extra + b"\r\n"
    if kind == 5:
        op = r.choice([b"incr", b"decr"])
        return b"%s %s %s%s\r\n" % (op, key, r.choice(DELTA), r.choice(NOREPLY))
    if kind == 6:
        return b"touch %s %s%s\r\n" % (key, r.choice(EXPTIME), r.choice(NOREPLY))
    if kind == 7:
        return b"mg " + key + _flags(r, MG) + b"\r\n"
    if kind == 8:
        v = value(r)
        n = len(v) + r.choice([0] * 8 + [1])
        flags = _flags(r, MS)
        if b" I" in flags:
            # I stores a CAS older than the item's as stale: "older" compares a client's
            # number with the cluster's versions, another number space (by design).
            flags = flags.replace(b" C1", b"").replace(b" C99999999", b"")
        return b"ms %s %d%s\r\n%s\r\n" % (key, n, flags, v)
    if kind == 9:
        return b"ma " + key + _flags(r, MA) + b"\r\n"
    if kind == 10:
        return b"md " + key + _flags(r, MD) + b"\r\n"
    if kind == 11:
        return r.choice([b"mn\r\n", b"version\r\n", b"bogus\r\n", b"me %s\r\n" % key,
                         b"get\r\n", b"\r\n", b"verbosity 1\r\n"])
    # A key already set, so that what follows finds it.
    return b"set %s %s 0 %d\r\n%s\r\n" % (key, r.choice(FLAGS[:4]), 2, b"10")


def sequence(seed: int, max_len: int = 8) -> list[bytes]:
    r = random.Random(seed)
    return [command(r) for _ in range(r.randint(1, max_len))]


def stream(commands: list[bytes]) -> bytes:
    return b"flush_all\r\n" + b"".join(commands)


def shrink(commands: list[bytes], differs) -> list[bytes]:
    """The shortest sublist (one command dropped at a time) for which differs() holds."""
    changed = True
    while changed and len(commands) > 1:
        changed = False
        for i in range(len(commands)):
            trial = commands[:i] + commands[i + 1:]
            if differs(trial):
                commands, changed = trial, True
                break
    return commands
