"""Anti-entropy on three real nodes (127.0.0.74-76 and 77-79 without it), N=2: replicas that
disagree (state planted through peer connections, so neither hints nor a read can mend it)
agree again with no client reading, and rounds between agreeing replicas send no keys. The
same planting on a cluster without anti-entropy stays divergent: the check sees divergence."""
from __future__ import annotations

import time

import pytest
from helpers.cluster import wait_for
from replicas import PeerView, owners

pytestmark = pytest.mark.python_logic

KEYS = 120


def plant(fleet) -> dict[bytes, tuple[bytes | None, list[int]]]:
    """Per key: (the value every owner must end with, None for deleted; its owners). One
    owner alone gets a newer value, or a delete, or the only copy of a key."""
    want = {}
    base = int(time.time() * 1000) << 22          # above what the nodes' clocks issue
    views = {i: PeerView(fleet, i) for i in range(len(fleet))}
    try:
        for i in range(KEYS):
            key = b"ae:%d" % i
            own = owners(fleet, key)
            first, second = views[own[0]], views[own[1]]
            kind = i % 3
            if kind != 2:           # both hold v1; one of them then gets something newer
                for view in (first, second):
                    assert view.write(b"ms %s 2 T0 E%d\r\nv1\r\n" % (key, base + i)) == b"HD\r\n"
            lucky = (first, second)[i % 2]
            if kind == 1:
                assert lucky.write(b"md %s E%d\r\n" % (key, base + KEYS + i)) == b"HD\r\n"
                want[key] = (None, own)
            else:
                assert lucky.write(b"ms %s 2 T0 E%d\r\nv2\r\n" % (key, base + KEYS + i)) \
                    == b"HD\r\n"
                want[key] = (b"v2", own)
    finally:
        for view in views.values():
            view.close()
    return want


def divergent(fleet, want) -> list[bytes]:
    views = {i: PeerView(fleet, i) for i in range(len(fleet))}
    try:
        bad = []
        for key, (value, own) in want.items():
            held = [views[i].copy(key) for i in own]
            if any((c[0] if c else None) != value for c in held):
                bad.append(key)
        return bad
    finally:
        for view in views.values():
            view.close()


def ae_stats(fleet) -> dict[str, int]:
    total: dict[str, int] = {}
    for node in fleet:
        for k, v in node.stats("cluster").items():
            if (k.startswith("anti_entropy_") or k == "read_repairs") and isinstance(v, int):
                total[k] = total.get(k, 0) + v
    return total


@pytest.mark.parametrize("interval", ["0.5", "0"])
def test_replicas_that_disagree_agree_again_without_reads(make_fleet, interval):
    fleet = make_fleet(74 if interval != "0" else 77, 3, "--replicas", "2", "--write-quorum",
                       "2", "--anti-entropy-interval", interval)
    fleet.start()
    want = plant(fleet)
    if interval == "0":
        # Negative control: the check sees what was planted, and nothing else mends it (no
        # reads, no hints were queued).
        assert len(divergent(fleet, want)) == KEYS
        time.sleep(4)
        assert len(divergent(fleet, want)) == KEYS
        assert ae_stats(fleet).get("anti_entropy_rounds", 0) == 0
        return
    wait_for(lambda: not divergent(fleet, want), 10, "every owner agreeing",
             detail=lambda: f"{len(divergent(fleet, want))} keys still differ")
    stats = ae_stats(fleet)
    assert stats["read_repairs"] == 0       # mended by anti-entropy, not by a read
    assert stats["anti_entropy_keys_pushed"] >= KEYS
    # Replicas that agree: rounds go on and send digests only.
    pushed, rounds = stats["anti_entropy_keys_pushed"], stats["anti_entropy_rounds"]
    forwarded = [node.stats("cluster")["peer_requests_sent"] for node in fleet]
    wait_for(lambda: ae_stats(fleet)["anti_entropy_rounds"] >= rounds + 6, 10, "more rounds")
    assert ae_stats(fleet)["anti_entropy_keys_pushed"] == pushed
    # Rounds have links of their own: a digest, which waits for a walk of the peer's store,
    # never holds up (or times out) the forwarding links' requests.
    assert [node.stats("cluster")["peer_requests_sent"] for node in fleet] == forwarded


def test_digests_are_for_peers_only(make_fleet):
    fleet = make_fleet(74, 1, "--replicas", "2")
    fleet.start()
    assert fleet[0].call(b"cluster digest x y\r\n") == \
        b"CLIENT_ERROR cluster digest is for cluster peers\r\n"
    with PeerView(fleet, 0) as view:
        assert view.write(b"cluster digest wrongring me\r\n").startswith(b"RING ")
        assert view.write(b"cluster versions\r\n") == b"CLIENT_ERROR bad command line format\r\n"
        assert view.write(b"cluster versions %s me zz\r\n"
                          % fleet[0].stats("cluster")["ring_checksum"].encode()) == \
            b"CLIENT_ERROR bad command line format\r\n"
