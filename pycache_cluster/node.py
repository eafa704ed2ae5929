"""The node's lifecycle: wires store, protocol server and housekeeping; start/stop in order.

Components are started in the order they are added and stopped in reverse; anything with
`async start(node)` and `async stop(node)` plugs in with `node.add(component)`. With a gossip
port the membership is the last one: it starts once the node serves and, on SIGTERM/SIGINT or
`shutdown`, announces the leave first, then the server stops accepting and drains.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import time

from pycache_cluster import memstats
from pycache_cluster.config import Config
from pycache_cluster.protocol import ServerState
from pycache_cluster.protocol.conn_events import ConnEvents
from pycache_cluster.protocol.watch import Watches
from pycache_cluster.store import Store, set_large_cache_max

log = logging.getLogger("pycache_cluster")

MEMORY_RELEASE_INTERVAL = 1.0   # seconds
#: Seconds a TLS client has to finish its handshake (a plaintext client never does).
HANDSHAKE_TIMEOUT = 10.0


def large_cache_bytes(limit: int) -> int:
    """Freed big-item ranges kept for reuse (csrc/pc_large.h), held beyond -m: 1/32 of it,
    between 1 and 4 MiB. Below 2 MiB a 1 MB flood page-faults about twice as often."""
    return max(1 << 20, min(4 << 20, limit // 32))


class Housekeeping:
    """Loop timers doing bounded work: the store's clock each second, expiry-crawler steps,
    and giving freed memory back to the kernel."""

    def __init__(self):
        self._tasks: list[asyncio.Task] = []

    async def start(self, node: Node) -> None:
        self._tasks = [asyncio.ensure_future(self._clock(node)),
                       asyncio.ensure_future(self._crawl(node)),
                       asyncio.ensure_future(self._release_memory())]

    async def stop(self, node: Node) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _clock(self, node: Node) -> None:
        while True:
            node.store.set_time(int(time.time()))
            # Wake just after the next whole second.
            await asyncio.sleep(1.0 - (time.time() % 1.0) + 0.001)

    async def _crawl(self, node: Node) -> None:
        cfg = node.config
        while True:
            await asyncio.sleep(cfg.crawl_interval)
            node.store.crawl(cfg.crawl_buckets)

    async def _release_memory(self) -> None:
        # What the process holds but does not use, given back each second: big items' cached
        # mappings not reused since the last round, and whole free pages in the heap's holes
        # (glibc only gives back the top of its heap on its own). See memstats.release().
        while True:
            await asyncio.sleep(MEMORY_RELEASE_INTERVAL)
            memstats.release()


class ProtocolServer:
    """The TCP listener for memcached's protocols."""

    def __init__(self):
        self.server: asyncio.AbstractServer | None = None

    async def start(self, node: Node) -> None:
        loop = asyncio.get_running_loop()
        cfg = node.config
        tls = {} if node.tls is None else {
            "ssl": node.tls.server, "ssl_handshake_timeout": HANDSHAKE_TIMEOUT}
        # Bound now (the port is known to the parts started after), listening only once
        # they are all in: a client or a peer that connects finds gossip, the ring and the
        # lock commands there, never a node half started.
        if cfg.unix_socket:
            self.server = await self._unix(loop, node, cfg)
            return
        self.server = await loop.create_server(
            node.state.protocol_factory, host=cfg.listen, port=cfg.port, backlog=cfg.backlog,
            reuse_address=True, start_serving=False, **tls)
        if cfg.port == 0:
            cfg.port = self.server.sockets[0].getsockname()[1]

    @staticmethod
    async def _unix(loop, node: Node, cfg: Config) -> asyncio.AbstractServer:
        """memcached's -s: a stale socket file is replaced; the socket gets -a's mode."""
        try:
            if stat.S_ISSOCK(os.lstat(cfg.unix_socket).st_mode):
                os.unlink(cfg.unix_socket)
        except FileNotFoundError:
            pass
        server = await loop.create_unix_server(
            node.state.protocol_factory, cfg.unix_socket, backlog=cfg.backlog,
            start_serving=False)
        os.chmod(cfg.unix_socket, cfg.unix_mask)
        return server

    async def listen(self) -> None:
        await self.server.start_serving()

    async def drain(self, node: Node) -> None:
        """Stops accepting; every connection's replies already owed are sent (a peer's
        requests routed on included), then it closes. At most 5 s."""
        if self.server is None or not self.server.is_serving() and not node.state.conns:
            return
        self.server.close()
        deadline = time.monotonic() + 5.0
        for conn in list(node.state.conns):
            conn.close_when_drained()
        while node.state.conns and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def stop(self, node: Node) -> None:
        if self.server is None:
            return
        await self.drain(node)
        await self.server.wait_closed()


class Node:
    """One cache node: a store, the protocol server, housekeeping, and what comes later."""

    def __init__(self, config: Config):
        self.config = config
        self.tls = None
        if config.tls:
            # Imported only here; certificate files are read now, so a bad one fails start.
            from pycache_cluster.ops.tls import Tls
            self.tls = Tls(config)
        self.store = Store(config.memory_limit_bytes, config.max_item_size)
        set_large_cache_max(large_cache_bytes(config.memory_limit_bytes))
        self.state = ServerState(self.store, config)
        self.state.on_shutdown = self._on_shutdown_command
        self.conn_events = ConnEvents(self.state)
        if not config.evictions:
            self.store.set_evictions(False)         # -M
        self.state.sizes_enabled = config.track_sizes
        self.state.crawler_enabled = config.lru_crawler
        store = self.store
        self.state.extensions.add_stats(b"memory",
                                        lambda args=None: memstats.stats_lines(args, store))
        self.protocol_server = ProtocolServer()
        self.cluster = None     # the cluster component while it runs (cluster/component.py)
        watches = Watches() if config.watch_enabled else None      # -W: `watch` refused
        self.components: list = [Housekeeping(), *filter(None, [watches])]
        if config.idle_timeout:
            from pycache_cluster.protocol.idle import IdleTimeout
            self.components.append(IdleTimeout(config.idle_timeout, watches))
        self.components.append(self.protocol_server)
        self._stopped = asyncio.Event()
        self._stopping = False
        self._started: list = []
        self.metrics = None
        if config.metrics_port is not None:
            # Imported only here: prometheus_client is loaded by nodes that export.
            from pycache_cluster.ops.exposition import MetricsServer
            self.metrics = MetricsServer(config.listen, config.metrics_port)
            self.add(self.metrics)
        if config.gossip_port is not None:
            # Imported only here: a node without gossip loads none of it.
            from pycache_cluster.cluster.component import Cluster
            self.add(Cluster(config))
        from pycache_cluster.locks.service import Locks
        self.locks = Locks(config)
        self.add(self.locks)

    def add(self, component) -> None:
        """Adds a component started after (and stopped before) the existing ones."""
        self.components.append(component)

    async def start(self) -> None:
        for c in self.components:
            if self._stopping:
                return      # a signal arrived while starting: start nothing more
            await c.start(self)
            self._started.append(c)
        await self.protocol_server.listen()

    async def stop(self) -> None:
        # A graceful leave first, while the node serves and routes: what clients and peers
        # send meanwhile goes on to the owners. Then the clients drain, routing still up;
        # then every part stops in reverse.
        for c in reversed(self._started):
            if hasattr(c, "leave"):
                try:
                    await c.leave(self)
                except Exception:
                    log.exception("leaving with %r", c)
        if self.protocol_server in self._started:
            await self.protocol_server.drain(self)
        while self._started:
            c = self._started.pop()
            try:
                await c.stop(self)
            except Exception:  # keep stopping the rest
                log.exception("stopping %r", c)
        self._stopped.set()

    def request_stop(self) -> None:
        if not self._stopped.is_set() and not self._stopping:
            self._stopping = True
            asyncio.ensure_future(self.stop())

    def _on_shutdown_command(self, graceful: bool) -> None:
        self.request_stop()

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        if not self._stopping:
            from pycache_cluster.ops import startup
            startup.report(self)
            if self.config.pidfile:
                from pycache_cluster.ops.process import save_pid
                save_pid(self.config.pidfile)
        await self._stopped.wait()


def raise_fd_limit(conn_limit: int) -> None:
    """As memcached does for -c: make room for conn_limit client sockets, within the hard
    limit (beyond it, accepts fail and the loop logs them)."""
    import resource

    want = conn_limit + 64     # listeners, log files, the loop's own descriptors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-file limit to %d: %s", new, e)


def run(config: Config) -> int:
    """Runs a node until SIGTERM/SIGINT (or `shutdown` with -A); returns the exit status."""
    import uvloop

    logging.basicConfig(
        level=logging.DEBUG if config.verbosity > 1 else
        logging.INFO if config.verbosity else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise_fd_limit(config.conn_limit)
    # Imported before -u may drop root (an interpreter under a root-only home is unreadable
    # then): the start-up line, and the codec getaddrinfo looks host names up with.
    import encodings.idna  # noqa: F401

    from pycache_cluster.ops import startup  # noqa: F401
    from pycache_cluster.ops.process import prepare, remove_pid
    try:
        node = Node(config)     # reads the key and certificate files, as root if so started
    except (OSError, ValueError) as e:     # the cluster key file
        log.error("%s", e)
        return 1
    prepare(config)             # then -r, -u, -d, -k, in memcached's order
    try:
        uvloop.run(node.serve_forever())
    except OSError as e:
        ports = str(config.port) if config.gossip_port is None else \
            f"{config.port} (gossip port {config.gossip_port})"
        where = config.unix_socket or f"{config.listen}:{ports}"
        log.error("cannot listen on %s: %s", where, e)
        return 1
    finally:
        if config.pidfile and config.daemon:
            remove_pid(config.pidfile)      # memcached removes it only when it daemonized
    return 0
