"""The node's settings: one documented dataclass (the CLI and PYCACHE_* env map onto it)."""
from __future__ import annotations

from dataclasses import dataclass

# Names of pycache_cluster.gossip.config.PRESETS (kept here so that a node without gossip never
# imports the gossip package).
GOSSIP_PRESETS = ("lan", "local", "memberlist")
# pycache_cluster.cluster.ring.DEFAULT_VNODES, for the same reason.
DEFAULT_VNODES = 2000


@dataclass
class Config:
    """Everything a node is told at start. Field names follow memcached's long options."""

    #: TCP port to listen on (memcached -p).
    port: int = 11211
    #: Interface to listen on (memcached -l). Loopback unless asked: never 0.0.0.0 by default.
    listen: str = "127.0.0.1"
    #: Item memory limit in megabytes (memcached -m); items plus the hash table count.
    memory_limit_mb: int = 64
    #: Most simultaneous client connections (memcached -c); more are answered
    #: "ERROR Too many open connections" and closed.
    conn_limit: int = 1024
    #: Largest item in bytes (memcached -I), by memcached's own item-size formula.
    max_item_size: int = 1024 * 1024
    #: UDP port (memcached -U); 0 (off) is the only value supported.
    udp_port: int = 0
    #: 0 quiet, 1 errors and warnings, 2 every request (memcached -v/-vv).
    verbosity: int = 0
    #: Accept the `shutdown` command (memcached -A).
    enable_shutdown: bool = False
    #: TCP port of the Prometheus endpoint (GET /metrics) on the `listen` address;
    #: None = off, 0 = any free port.
    metrics_port: int | None = None
    #: TLS on the client port (memcached -Z); the ssl_* fields are memcached's -o names.
    tls: bool = False
    #: PEM certificate chain this node presents (ssl_chain_cert).
    ssl_chain_cert: str = ""
    #: PEM private key of that certificate (ssl_key).
    ssl_key: str = ""
    #: PEM CA certificates client (and peer) certificates are checked against (ssl_ca_cert).
    ssl_ca_cert: str = ""
    #: 0 no client certificate, 1 checked if given, 2 (and 3) required (ssl_verify_mode).
    ssl_verify_mode: int = 0
    #: Oldest protocol accepted: 0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2, 3 TLS 1.3 (ssl_min_version).
    ssl_min_version: int = 2
    #: OpenSSL cipher list for TLS 1.2 and older; "" = Python's default (ssl_ciphers).
    ssl_ciphers: str = ""
    #: SASL on the binary protocol (memcached -S): binary connections must authenticate
    #: with PLAIN before any other command, and the text protocol is refused.
    sasl: bool = False
    #: The SASL password file, `user:password` a line (memcached's MEMCACHED_SASL_PWDB).
    sasl_pwdb: str = ""
    #: memcached's ascii authentication (-Y): a file of `user:password` lines; "" = off.
    #: Until a connection sends `set <any> <any> <any> <len>` whose value is `user password`,
    #: every command answers CLIENT_ERROR (protocol/auth.py). Cluster peers prove the
    #: cluster key instead, so with gossip it needs cluster_key_file.
    auth_file: str = ""
    #: `stats detail`'s prefix delimiter (memcached -D, which also turns detail on).
    prefix_delimiter: str = ":"
    #: Per-prefix counters from the start (`stats detail on`); -D sets it.
    detail_enabled: bool = False
    #: flush_all allowed (memcached -F turns it off: CLIENT_ERROR flush_all not allowed;
    #: in a cluster one flush_all empties every member).
    flush_enabled: bool = True
    #: Evict live items to make room (memcached -M turns it off: such a write answers
    #: SERVER_ERROR out of memory storing object; expired items are still reclaimed).
    evictions: bool = True
    #: `stats cachedump` and `lru_crawler metadump` allowed (memcached -X turns them off).
    dump_enabled: bool = True
    #: `watch` allowed (memcached -W turns it off).
    watch_enabled: bool = True
    #: User to become once started as root (memcached -u); ignored when not root.
    user: str = ""
    #: Detach into the background (memcached -d).
    daemon: bool = False
    #: File the process id is written to once serving (memcached -P).
    pidfile: str = ""
    #: Raise the core file limit to its maximum (memcached -r).
    coredumps: bool = False
    #: mlockall() all paged memory (memcached -k); a failure is a warning, as in memcached.
    lock_memory: bool = False
    #: The listen backlog (memcached -b).
    backlog: int = 1024
    #: Listen on this Unix socket instead of TCP (memcached -s); a node alone.
    unix_socket: str = ""
    #: The Unix socket's access mask (memcached -a), e.g. 0o700.
    unix_mask: int = 0o700
    #: Seconds a client connection may sit idle (no request, nothing owed) before it is
    #: closed; 0 never (memcached -o idle_timeout).
    idle_timeout: int = 0
    #: `stats sizes` counts from the start (memcached -o track_sizes).
    track_sizes: bool = False
    #: The LRU crawler's commands enabled (memcached -o no_lru_crawler starts disabled, as
    #: `lru_crawler disable`); expiry crawling itself always runs.
    lru_crawler: bool = True
    #: Expiry-crawler step: hash buckets examined per tick (bounded work on the loop).
    crawl_buckets: int = 256
    #: Seconds between crawler ticks.
    crawl_interval: float = 0.1

    # Cluster membership (gossip), on only when gossip_port is set. Without it the node runs
    # alone, exactly as before gossip existed, and the other fields below must stay empty.
    #: UDP and TCP port for gossip, bound on the `listen` address; None = no gossip, 0 = any.
    gossip_port: int | None = None
    #: This node's unique name in the cluster; "" = "<hostname>:<port>" (stable across
    #: restarts, which is what lets a restarted node reclaim its name).
    node_name: str = ""
    #: Seeds to join: "host[:port],..." (port defaults to gossip_port; DNS names resolve to
    #: every address). "" = start a new cluster (others join us).
    join: str = ""
    #: AES-GCM keyring file (see pycache_cluster.gossip.keyring); "" = gossip in clear text.
    cluster_key_file: str = ""
    #: Timer preset of the membership protocol: lan, local (one machine) or memberlist.
    gossip_preset: str = "lan"
    #: Address peers and clients are told to reach this node at (containers, -l 0.0.0.0);
    #: "" = the -l address (or, on a wildcard, what this host's name resolves to).
    advertise_addr: str = ""
    #: This node's share of the key space relative to the others (1..100).
    weight: int = 1
    #: Ring points per unit of weight; the same on every node (see cluster/ring.py).
    vnodes: int = DEFAULT_VNODES
    #: This node's failure domain (rack, zone), advertised in gossip: a key's owners take at
    #: most ceil(N / zones) nodes of one zone (see cluster/ring.py). "" = none named.
    zone: str = ""
    #: Owners per key (N): each key lives on its first N nodes of the ring (1..16).
    replicas: int = 2
    #: Owners that must hold a write before it is acknowledged (W, 1..N). With W = N an
    #: acknowledged write survives the loss of N - 1 owners; writes to a key with an owner
    #: down fail (SERVER_ERROR) until gossip declares that owner dead (a few seconds).
    write_quorum: int = 2
    #: Owners whose answers a read needs (R, 1..N). R = 1 lets an owner holding the key
    #: answer from its own copy; otherwise a read asks every owner at once, the newest
    #: version wins, stale owners are repaired, and fewer than R answers make it a miss.
    #: R + W > N: a read sees every acknowledged write while no owner is lost.
    read_quorum: int = 1
    #: Seconds a deleted key's tombstone is kept, so that an older write that arrives late
    #: (a hint, a slow replica) cannot bring it back.
    tombstone_ttl: int = 60
    #: Bytes per second a hand-over walk may send (0: as fast as the peer links take it).
    handover_rate: int = 0
    #: Seconds a graceful leave waits for its hand-over before the node goes anyway.
    leave_timeout: float = 30.0
    #: Seconds between anti-entropy rounds (one peer a round), 0 none; with --replicas 1
    #: there is nothing to compare.
    anti_entropy_interval: float = 30.0
    #: Seconds a request forwarded to a peer may wait for its reply (connect included)
    #: before its client is answered SERVER_ERROR.
    forward_timeout: float = 1.0
    #: Pipelined connections to each peer (a key always uses the same one).
    peer_links: int = 1
    #: Longest lease a lock may be granted, in seconds. Also how long a restarted node, and
    #: a node that became an owner of a lock name, stays out of that name's votes.
    lock_max_ttl: float = 60.0
    #: Clock-rate bound rho between nodes and clients: replicas keep a lease ttl * (1 + rho),
    #: holders trust it for ttl * (1 - rho) minus what acquiring took.
    lock_drift: float = 0.01
    #: Lock names a node's table holds (free entries are dropped first; beyond: refusals).
    lock_limit: int = 100_000
    #: Directory of the node's persisted lock token mark ("": none, and tokens then assume
    #: that the wall clock never steps back across a restart).
    lock_state_dir: str = ""
    #: Seconds a waiter woken at a lock's release has to take it before the next waiter is
    #: woken too (the fallback for a woken client that died or stalls): longer keeps the
    #: queue's order on a slow client, shorter frees the lock sooner after a dead one.
    lock_wait_grace: float = 0.25

    @property
    def memory_limit_bytes(self) -> int:
        return self.memory_limit_mb * 1024 * 1024

    def validate(self) -> None:
        """Raises ValueError with a message for the user when a setting cannot work."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics port {self.metrics_port} is out of range")
        if self.metrics_port and self.metrics_port in (self.port, self.gossip_port):
            raise ValueError(f"metrics port {self.metrics_port} is taken by another port")
        if self.udp_port != 0:
            raise ValueError("UDP is not supported: -U must be 0 (off)")
        if self.memory_limit_mb < 1:
            raise ValueError("memory limit must be at least 1 megabyte")
        if self.conn_limit < 1:
            raise ValueError("connection limit must be at least 1")
        if self.max_item_size < 1024:
            raise ValueError("item max size cannot be less than 1024 bytes")
        if self.max_item_size > 1024 * 1024 * 1024:
            raise ValueError("cannot set item size limit higher than 1 gigabyte")
        if self.max_item_size > self.memory_limit_bytes // 2:
            raise ValueError("item max size cannot be larger than half the memory limit")
        if self.tls or self.ssl_chain_cert or self.ssl_key or self.ssl_ca_cert:
            from pycache_cluster.ops.tls import check
            check(self)
        if self.sasl and not self.sasl_pwdb:
            raise ValueError("-S needs a password file: --sasl-pwdb FILE or "
                             "MEMCACHED_SASL_PWDB")
        if self.sasl_pwdb and not self.sasl:
            raise ValueError("--sasl-pwdb needs -S (SASL is off)")
        if self.sasl and self.gossip_port is not None and not self.cluster_key_file:
            raise ValueError("-S (SASL) in a cluster needs --cluster-key-file: peer links "
                             "prove the cluster key instead of a password")
        if not 1 <= self.backlog <= 65535:
            raise ValueError(f"listen backlog {self.backlog} is out of range 1..65535")
        if self.idle_timeout < 0:
            raise ValueError("idle_timeout must not be negative")
        if self.unix_socket:
            if self.gossip_port is not None:
                raise ValueError("-s (a Unix socket) cannot be a cluster member: peers reach "
                                 "each other over TCP (use -l and -p)")
            if self.tls:
                raise ValueError("ERROR: You cannot enable SSL without a TCP port.")
        if not 0 <= self.unix_mask <= 0o777:
            raise ValueError(f"unix mask {self.unix_mask:o} is not a file mode")
        if len(self.prefix_delimiter) != 1 or not self.prefix_delimiter.isascii():
            raise ValueError("-D takes one ASCII character (the prefix delimiter)")
        if self.auth_file:
            from pycache_cluster.protocol.auth import load
            load(self.auth_file)
            if self.gossip_port is not None and not self.cluster_key_file:
                raise ValueError("-Y (ascii auth) in a cluster needs --cluster-key-file: peer "
                                 "links prove the cluster key instead of a password")
        if not 0 < self.lock_max_ttl <= 3600:
            raise ValueError(f"lock max ttl {self.lock_max_ttl} must be in (0, 3600] s")
        if not 0 <= self.lock_drift < 0.5:
            raise ValueError(f"lock drift {self.lock_drift} must be in [0, 0.5)")
        if not 0 < self.lock_wait_grace <= 60:
            raise ValueError(f"lock wait grace {self.lock_wait_grace} must be in (0, 60] s")
        if self.lock_limit < 1:
            raise ValueError("lock limit must be at least 1")
        self._validate_gossip()

    def _validate_gossip(self) -> None:
        if self.gossip_port is None:
            given = [flag for flag, value in (("--node-name", self.node_name),
                                              ("--join", self.join),
                                              ("--cluster-key-file", self.cluster_key_file),
                                              ("--advertise-addr", self.advertise_addr),
                                              ("--zone", self.zone))
                     if value]
            if given:
                verb = "needs" if len(given) == 1 else "need"
                raise ValueError(f"{', '.join(given)} {verb} --gossip-port (gossip is off)")
            return
        if not 0 <= self.gossip_port <= 65535:
            raise ValueError(f"gossip port {self.gossip_port} is out of range")
        if self.gossip_port and self.gossip_port == self.port:
            raise ValueError(f"gossip port {self.gossip_port} is the client port (-p)")
        if self.node_name and any(c.isspace() for c in self.node_name):
            raise ValueError(f"node name {self.node_name!r} contains whitespace")
        if self.gossip_preset not in GOSSIP_PRESETS:
            raise ValueError(f"gossip preset {self.gossip_preset!r}: one of "
                             f"{', '.join(GOSSIP_PRESETS)}")
        if not 1 <= self.weight <= 100:
            raise ValueError(f"weight {self.weight} is out of range 1..100")
        if not 1 <= self.vnodes <= 10000:
            raise ValueError(f"vnodes {self.vnodes} is out of range 1..10000")
        from pycache_cluster.cluster.ring import check_zone  # only with gossip on
        check_zone(self.zone)
        if not 0 < self.forward_timeout <= 60:
            raise ValueError(f"forward timeout {self.forward_timeout} must be in (0, 60] s")
        if not 1 <= self.replicas <= 16:
            raise ValueError(f"replicas {self.replicas} is out of range 1..16")
        if not 1 <= self.write_quorum <= self.replicas:
            raise ValueError(f"write quorum {self.write_quorum} must be 1..replicas "
                             f"({self.replicas})")
        if not 1 <= self.read_quorum <= self.replicas:
            raise ValueError(f"read quorum {self.read_quorum} must be 1..replicas "
                             f"({self.replicas})")
        if self.anti_entropy_interval < 0:
            raise ValueError("anti-entropy interval must not be negative")
        if self.handover_rate < 0 or self.leave_timeout < 0:
            raise ValueError("handover rate and leave timeout must not be negative")
        if not 1 <= self.tombstone_ttl <= 86400:
            raise ValueError(f"tombstone ttl {self.tombstone_ttl} is out of range 1..86400 s")
        if not 1 <= self.peer_links <= 16:
            raise ValueError(f"peer links {self.peer_links} is out of range 1..16")
        if self.advertise_addr and any(c.isspace() or c == "," for c in self.advertise_addr):
            raise ValueError(f"advertise address {self.advertise_addr!r} is not an address")
        for seed in self.seeds:
            _, sep, port = seed.rpartition(":")
            if sep and not (port.isdigit() and 0 < int(port) <= 65535):
                raise ValueError(f"join seed {seed!r}: use host[:port] ([v6-address]:port)")

    @property
    def seeds(self) -> list[str]:
        return [s.strip() for s in self.join.split(",") if s.strip()]
