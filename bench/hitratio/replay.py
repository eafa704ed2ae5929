"""A look-aside client over the text protocol: gets in pipelined batches, a set (noreply)
for each miss before the key is asked for again."""
from __future__ import annotations

import socket

import numpy as np

BATCH = 64
_VALUE = memoryview(b"v" * (1 << 20))


def replay(address: tuple[str, int], ids: np.ndarray, sizes: np.ndarray) -> dict:
    """Replays the stream once; {'requests', 'misses'} as the client counted them.

    A batch is a multi-get of distinct keys (it ends early where a key repeats, so a
    missed key is always set before it is asked for again): the server answers all of
    them, then the misses' sets follow on the same connection, in order."""
    sock = socket.create_connection(address, timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    misses = 0
    id_list = ids.tolist()
    size_list = sizes.tolist()
    n = len(id_list)
    i = 0
    while i < n:
        batch: list[int] = []
        seen = set()
        while i < n and len(batch) < BATCH and id_list[i] not in seen:
            seen.add(id_list[i])
            batch.append(id_list[i])
            i += 1
        keys = [b"k%d" % k for k in batch]
        sock.sendall(b"get " + b" ".join(keys) + b"\r\n")
        hits, buf = _read_hits(sock, buf)
        out = []
        for k, key in zip(batch, keys):
            if key not in hits:
                misses += 1
                size = size_list[k]
                out.append(b"set %s 0 0 %d noreply\r\n" % (key, size))
                out.append(_VALUE[:size])
                out.append(b"\r\n")
        if out:
            sock.sendall(b"".join(out))
    sock.sendall(b"version\r\n")
    while b"VERSION" not in buf:
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionError("server closed the connection")
        buf += data
    sock.close()
    return {"requests": n, "misses": misses}


def _read_hits(sock, buf: bytearray) -> tuple[set, bytearray]:
    """The keys of one multi-get's VALUE replies, up to its END."""
    hits = set()
    pos = 0
    while True:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            buf += data
            continue
        line = bytes(buf[pos:nl])
        if line == b"END":
            return hits, buf[nl + 2:]
        parts = line.split(b" ")
        if parts[0] != b"VALUE":
            raise RuntimeError(f"unexpected reply {line[:80]!r}")
        end = nl + 2 + int(parts[3]) + 2
        while len(buf) < end:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            buf += data
        hits.add(parts[1])
        pos = end
