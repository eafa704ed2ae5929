"""Watch: the threaded client's change stream of one key, or of every key under a prefix.

One thread per node streams `watch changes` from it (every owner of a key; every node for a
prefix, whose keys live everywhere), reconnecting after a failure and resuming where it was;
their events meet in one queue and leave merged (watch_feed.py). A watch starts with the
changes after it was made; it reports nothing about the past.

Nodes the ring adds later (a join) are streamed from then on. A node is never let go while
the watch lasts, even when the ring drops it: if it comes back (a restart), its stream
resumes and says what it cannot vouch for, instead of starting afresh as if nothing had been
missed. What this cannot see: a key whose owners all change between two ring checks, with
writes in between, may lose those changes without a Gap.
"""
from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Self

from pycache_cluster.client.watch_feed import Change, Gap, Merge, Position, request

#: Seconds a stream's socket blocks in recv before it checks whether the watch was closed.
POLL = 0.25


class Stream(threading.Thread):
    def __init__(self, watch: Watch, node):
        super().__init__(name=f"pycache-watch-{node.name}", daemon=True)
        self.watch = watch
        self.node = node
        self.position = Position(node.name)
        self.stopped = threading.Event()
        #: Set once the node answered its first resume line, or could not be reached.
        self.ready = threading.Event()
        self.sock: socket.socket | None = None

    def run(self) -> None:
        w = self.watch
        while not self.stopped.is_set():
            try:
                self._follow()
            except (OSError, ValueError, KeyError):
                pass        # a lost connection or a garbled line: reconnect and resume
            finally:
                self.ready.set()
                if self.sock is not None:
                    self.sock.close()
                    self.sock = None
            self.stopped.wait(w.retry_after)

    def _follow(self) -> None:
        w = self.watch
        self.sock = socket.create_connection((self.node.host, self.node.port),
                                             timeout=w.connect_timeout)
        self.sock.settimeout(POLL)
        self.sock.sendall(request(w.full_key, w.full_prefix, self.position.after()))
        buf = b""
        ok = False
        while not self.stopped.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            buf += data
            if not ok:
                if b"\r\n" not in buf:
                    continue
                head, _, buf = buf.partition(b"\r\n")
                if head != b"OK":
                    raise ValueError(f"watch refused by {self.node.name}: {head!r}")
                ok = True
            *lines, buf = buf.split(b"\n")
            for line in lines:
                event = self.position.read(line, w.strip)
                if event is not None:
                    w.events.put(event)
                self.ready.set()

    def stop(self) -> None:
        self.stopped.set()


class Watch:
    """Iterate for Change and Gap events (blocking); next(timeout) waits at most timeout
    seconds (None: no event by then). close() (or `with`) stops every stream."""

    def __init__(self, client, key: bytes | None, prefix: bytes | None):
        self.client = client
        self.full_key = client._full(key) if key is not None else None
        self.full_prefix = client.codec.key_prefix + prefix if prefix is not None else None
        self.strip = len(client.codec.key_prefix)
        self.connect_timeout = client._conn_kwargs["connect_timeout"]
        self.retry_after = client.router.retry_after
        self.events: queue.Queue = queue.Queue()
        self.merge = Merge()
        self.streams: dict[str, Stream] = {}
        self._checksum = None
        self._closed = False
        self._follow_ring()
        # Changes "from now on": each node streams before the watch is handed over.
        for stream in self.streams.values():
            stream.ready.wait(self.connect_timeout + 1.0)

    def _nodes(self) -> list:
        topology, nodes = self.client.router.view
        if self.full_key is None:
            return list(nodes.values())
        return [nodes[name] for name in topology.owners(self.full_key, topology.replicas)]

    def _follow_ring(self) -> None:
        """Streams from the nodes the current ring names; called again when it changes."""
        topology, _ = self.client.router.view
        if topology.checksum == self._checksum:
            return
        self._checksum = topology.checksum
        for node in self._nodes():
            stream = self.streams.get(node.name)
            if stream is None:
                stream = self.streams[node.name] = Stream(self, node)
                stream.start()
            elif (stream.node.host, stream.node.port) != (node.host, node.port):
                stream.node = node          # moved: its next connection goes there

    def next(self, timeout: float | None = None) -> Change | Gap | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            self._follow_ring()
            wait = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            try:
                event = self.events.get(timeout=max(wait, 0.0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if self.merge.accept(event):
                return event
        return None

    def __iter__(self):
        while not self._closed:
            event = self.next()
            if event is not None:
                yield event

    def close(self) -> None:
        self._closed = True
        for stream in self.streams.values():
            stream.stop()
        for stream in self.streams.values():
            stream.join(POLL * 4)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
