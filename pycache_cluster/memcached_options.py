"""memcached 1.6.18's command-line options that have no meaning here, one by one, and its `-o`
suboptions: those taken (with the Config field each sets) and those refused.

A unit file written for memcached either starts the node with the same meaning or stops at
start with the message memcached prints for an option it does not take (`invalid option`
then `Illegal argument "?"` for a flag, `Illegal suboption "<item>"` for a suboption),
followed by a line saying why, and exit status 2. The flags that do mean something here are
ordinary arguments of `serve` (serve_args.py). `-t` is not listed: it is refused by the
parser for now, as before threads exist.
"""
from __future__ import annotations

import argparse
import sys

NO_SLABS = ("there are no slabs: an item is one allocation of its own size, and `stats items` "
            "and `stats slabs` group items by memcached's default classes (-n 48 -f 1.25)")

#: Flags memcached 1.6.18 takes that mean nothing here: flag -> (long name, takes a value,
#: why).
REFUSED_FLAGS = {
    "-R": ("--max-reqs-per-event", True, ("a connection yields to the others after 20 "
                                          "requests per read, memcached's default, which is "
                                          "fixed here")),
    "-C": ("--disable-cas", False, ("a cluster orders replicas by version (the CAS unique), "
                                    "so versions cannot be turned off")),
    "-e": ("--memory-file", True, ("items live in the process's heap; there is no "
                                   "restartable memory file")),
    "-N": ("--napi-ids", True, "connections are not spread over threads by NAPI ID"),
    "-f": ("--slab-growth-factor", True, NO_SLABS),
    "-n": ("--slab-min-size", True, NO_SLABS),
}

#: memcached's own refusal, where it has one of its own for the flag.
OWN_MESSAGE = {
    "-L": "Cannot enable large pages on this system\n(There is no support as of this version)",
}

#: Suboptions taken: name -> (Config field, converter); a bare name sets the field to True.
#: None: taken and changes nothing, as memcached itself ignores it.
ACCEPTED = {
    "ssl_chain_cert": ("ssl_chain_cert", str),
    "ssl_key": ("ssl_key", str),
    "ssl_ca_cert": ("ssl_ca_cert", str),
    "ssl_verify_mode": ("ssl_verify_mode", int),
    "ssl_min_version": ("ssl_min_version", int),
    "ssl_ciphers": ("ssl_ciphers", str),
    "idle_timeout": ("idle_timeout", int),
    "track_sizes": ("track_sizes", bool),
    "no_lru_crawler": ("lru_crawler", lambda _: False),
    "lru_crawler": ("lru_crawler", bool),
    "maxconns_fast": None,          # how a node past -c always answers
    "modern": None,                 # 1.6.18: "currently: nothing"
    "inline_ascii_resp": None,      # memcached ignores both
    "no_inline_ascii_resp": None,
    "hash_algorithm": None,         # murmur3 only (checked below)
}

#: memcached's message for a suboption that needs a value and has none.
MISSING = {
    "idle_timeout": "Missing numeric argument for idle_timeout",
    "ssl_chain_cert": "Missing ssl_chain_cert argument",
    "ssl_key": "Missing ssl_key argument",
    "ssl_ca_cert": "Missing ssl_ca_cert argument",
    "ssl_verify_mode": "Missing ssl_verify_mode argument",
    "ssl_min_version": "Missing ssl_min_version argument",
    "ssl_ciphers": "Missing ssl_ciphers argument",
    "hash_algorithm": "Missing hash_algorithm argument",
}

_LRU = "the LRU's segments are fixed here (HOT 20 %, WARM 40 % of -m, no TEMP)"
#: Suboptions refused: name (or prefix ending in _) -> why.
REFUSED = {
    "hashpower": "the hash table starts small and grows a few buckets per request",
    "no_hashexpand": "the hash table always grows",
    "tail_repair_time": "no item is ever stuck at an LRU tail (no reference counts)",
    "slab_reassign": NO_SLABS, "no_slab_reassign": NO_SLABS, "slab_automove": NO_SLABS,
    "no_slab_automove": NO_SLABS, "slab_automove_ratio": NO_SLABS,
    "slab_automove_window": NO_SLABS, "slab_automove_freeratio": NO_SLABS,
    "slab_sizes": NO_SLABS, "slab_chunk_max": NO_SLABS, "no_chunked_items": NO_SLABS,
    "lru_maintainer": _LRU, "no_lru_maintainer": _LRU, "hot_lru_pct": _LRU,
    "warm_lru_pct": _LRU, "hot_max_factor": _LRU, "warm_max_factor": _LRU,
    "temporary_ttl": _LRU,
    "lru_crawler_sleep": "the expiry crawler examines 256 buckets every 0.1 s",
    "lru_crawler_tocrawl": "the expiry crawler examines 256 buckets every 0.1 s",
    "read_buf_mem_limit": "read buffers are bounded per connection, not in total",
    "watcher_logbuf_size": "a watcher's lines are bounded by its socket (4 MiB queued)",
    "worker_logbuf_size": "there are no worker threads",
    "no_maxconns_fast": "a connection past -c is always answered and closed",
    "no_modern": "the 1.4 defaults (jenkins hash, flat LRU) do not exist here",
    "drop_privileges": "there is no seccomp sandbox; -u drops root",
    "no_drop_privileges": "there is no seccomp sandbox; -u drops root",
    "relaxed_privileges": "there is no seccomp sandbox; -u drops root",
    "ssl_keyformat": "keys are PEM files",
    "ssl_wbuf_size": "TLS output is buffered by Python's ssl module",
    "ssl_session_cache": "TLS sessions are not resumed",
    "ssl_kernel_tls": "TLS runs in the process (Python's ssl module)",
    "proxy_config": "the cluster routes keys itself; there is no proxy mode",
    "proxy_uring": "the cluster routes keys itself; there is no proxy mode",
    "sock_cookie_id": "sockets carry no cookie",
    "ext_": "there is no external storage (extstore): items live in memory",
}


class Refuse(argparse.Action):
    """A memcached flag that means nothing here: memcached's message, why, exit 2."""

    def __call__(self, parser, namespace, values, option_string=None):
        flag = next(o for o in self.option_strings if len(o) == 2)
        if flag in OWN_MESSAGE:
            print(OWN_MESSAGE[flag], file=sys.stderr)
            why = "large pages are not used: items are malloc'd"
        else:
            print(f"{parser.prog}: invalid option -- '{flag[1]}'\nIllegal argument \"?\"",
                  file=sys.stderr)
            why = REFUSED_FLAGS[flag][2]
        parser.exit(2, f"{parser.prog}: {'/'.join(self.option_strings)} is not supported "
                    f"here: {why}\n")


def add_refused(parser) -> None:
    """The refused flags, listed in --help so that a memcached user sees why."""
    group = parser.add_argument_group(
        "memcached options without a meaning here",
        "Each stops the start with memcached's message for an option it does not take.")
    for flag, (long, takes, why) in REFUSED_FLAGS.items():
        group.add_argument(flag, long, action=Refuse, nargs=1 if takes else 0,
                           metavar="X", help=f"refused: {why}")
    group.add_argument("-L", "--enable-largepages", action=Refuse, nargs=0,
                       help="refused: items are malloc'd, large pages are not used")


def parse(values: list[str]) -> dict[str, object]:
    """memcached's -o (comma-separated `name=value` or bare `name` items; -o may repeat) as
    {Config field: value}. ValueError carries memcached's message, then why."""
    out: dict[str, object] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, eq, val = item.partition("=")
            if name == "resp_obj_mem_limit":
                print("DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,",
                      file=sys.stderr)
                continue
            if name not in ACCEPTED:
                why = REFUSED.get(name) or next(
                    (w for p, w in REFUSED.items() if p.endswith("_") and name.startswith(p)),
                    "memcached 1.6.18 has no such option")
                raise ValueError(f"Illegal suboption \"{item}\"\n-o {name}: not supported "
                                 f"here: {why}")
            if not eq and name in MISSING:
                raise ValueError(MISSING[name])
            if name == "hash_algorithm":
                if val not in ("jenkins", "murmur3", "xxh3"):
                    raise ValueError("Unknown hash_algorithm option (jenkins, murmur3, xxh3)")
                if val != "murmur3":
                    raise ValueError(f"Illegal suboption \"{item}\"\n-o hash_algorithm: "
                                     "keys hash with murmur3 here (the ring and clients too)")
                continue
            entry = ACCEPTED[name]
            if entry is None:
                continue
            field, conv = entry
            try:
                out[field] = True if conv is bool else conv(val)
            except ValueError:
                raise ValueError(f"could not parse argument to {name}") from None
    return out
