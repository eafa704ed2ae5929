"""The metrics endpoint: a node component serving GET /metrics over HTTP on the node's loop.

On the loop rather than prometheus_client's threaded server: a scrape then reads the
counters between two batches of requests, never while the loop is changing them, and the
node has no second thread. The HTTP is the least a scraper needs (one request per
connection, GET or HEAD, `Connection: close`); a bad request is answered 400 and closed.

Each scrape first asks the node's own client port for `version`, as memcached_exporter asks
memcached, over the same transport clients use (TLS, a Unix socket, binary with -S): that is
memcached_up. prometheus_client's process and platform collectors add process_* (CPU, memory,
descriptors, start time) and python_info.
"""
from __future__ import annotations

import asyncio
import logging
import struct

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from pycache_cluster.ops.metrics import NodeCollector

log = logging.getLogger(__name__)

#: A scraper that takes longer than this to send its request is dropped.
REQUEST_TIMEOUT = 10.0
#: Seconds the node's own port has to answer the probe behind memcached_up.
PROBE_TIMEOUT = 2.0
BINARY_VERSION = struct.pack(">BBHBBHIIQ", 0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0)
MAX_HEADER_BYTES = 16384


class MetricsServer:
    """Serves the node's metrics on `host:port` (port 0: any free one, set once bound)."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.server: asyncio.AbstractServer | None = None
        self.scrapes = 0

    async def start(self, node) -> None:
        self.node = node
        self.collector = NodeCollector(node)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.server = await asyncio.start_server(self._serve, self.host, self.port,
                                                 reuse_address=True)
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self, node) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            self.collector.up = int(await self.probe())
            writer.write(self._answer(head))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            pass
        except Exception:  # a scrape must never take the node down
            log.exception("metrics request failed")
        finally:
            writer.close()

    async def probe(self) -> bool:
        """Does the node's client port answer a `version` now?"""
        cfg = self.node.config
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                if cfg.unix_socket:
                    reader, writer = await asyncio.open_unix_connection(cfg.unix_socket)
                else:
                    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(cfg.listen, cfg.listen)
                    tls = self.node.tls.client if self.node.tls is not None else None
                    reader, writer = await asyncio.open_connection(host, cfg.port, ssl=tls)
                try:
                    if cfg.sasl:            # binary only: its version needs no login
                        writer.write(BINARY_VERSION)
                        head = await reader.readexactly(24)
                        return head[0] == 0x81 and head[6:8] == b"\0\0"
                    writer.write(b"version\r\n")
                    line = await reader.readline()
                    # With -Y the answer is CLIENT_ERROR unauthenticated: it answers.
                    return line.startswith((b"VERSION ", b"CLIENT_ERROR"))
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return False

    def _answer(self, head: bytes) -> bytes:
        if len(head) > MAX_HEADER_BYTES:
            return _response(400, b"text/plain", b"request too large\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _response(400, b"text/plain", b"bad request\n")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(405, b"text/plain", b"GET or HEAD only\n")
        if target not in ("/metrics", "/"):
            return _response(404, b"text/plain", b"try /metrics\n")
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        self.scrapes += 1
        return _response(200, content_type.encode(), b"" if method == "HEAD" else body,
                         len(body))


def _response(status: int, content_type: bytes, body: bytes, length: int | None = None):
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found",
              405: b"Method Not Allowed"}[status]
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % (status, reason, content_type,
                                            len(body) if length is None else length)) + body
