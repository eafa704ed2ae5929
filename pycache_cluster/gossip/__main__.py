"""A stand-alone gossip member (`python -m pycache_cluster.gossip`), until the node serves `cluster members`.

It runs one Memberlist on uvloop and rewrites --members-file every --refresh seconds with the
exact `cluster members` reply (MEMBER lines then END), and --stats-file with the `stats gossip`
one. SIGTERM/SIGINT announce a graceful leave before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .config import PRESETS
from .keyring import Keyring
from .memberlist import Memberlist
from .reply import members_lines, stats_reply
from .state import NodeMeta, Status
from .transport import NetTransport


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pycache_cluster.gossip",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--node-name", required=True)
    ap.add_argument("--bind", default="127.0.0.1", help="address for UDP and TCP gossip")
    ap.add_argument("--gossip-port", type=int, default=7946)
    ap.add_argument("--join", default="", help="seeds: host:port[,host:port...] (DNS names ok)")
    ap.add_argument("--cluster-key-file", default=None)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="lan")
    ap.add_argument("--members-file", default=None)
    ap.add_argument("--stats-file", default=None)
    ap.add_argument("--refresh", type=float, default=0.1)
    return ap.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    keyring = Keyring.from_file(args.cluster_key_file) if args.cluster_key_file else None
    cfg = PRESETS[args.preset](name=args.node_name, bind_host=args.bind,
                               bind_port=args.gossip_port, keyring=keyring)
    ml = Memberlist(cfg, NetTransport(args.bind, args.gossip_port),
                    meta=NodeMeta(client_host=args.bind, status=Status.ACTIVE))
    await ml.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    joiner = asyncio.create_task(ml.join(args.join)) if args.join else None
    print(f"READY {ml.local_member.host}:{ml.local_member.port}", flush=True)
    while not stop.is_set():
        if args.members_file:
            _write(args.members_file, "\n".join(members_lines(ml.members())) + "\n")
        if args.stats_file:
            _write(args.stats_file, stats_reply(ml.stats()).decode())
        try:
            await asyncio.wait_for(stop.wait(), args.refresh)
        except TimeoutError:
            pass
    if joiner is not None:
        joiner.cancel()
    await ml.leave()
    await ml.shutdown()
    return 0


def _write(path: str, text: str) -> None:
    # Readers poll the file: replace it whole so they never see half a reply.
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {args.node_name} %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run(args))
    return uvloop.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
