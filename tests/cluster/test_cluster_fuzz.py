"""The cluster differential fuzz (fuzzgen.py), bounded: seeded short sequences to one node of
a 3-node cluster and to memcached 1.6.18, one at a time, under the default replication
(N=2, W=2), under N=3 W=2 R=2 and under N=1; any difference is shrunk and shown. The long
run is `python -m bench.cluster_fuzz`. Fixed sequences keep the differences found before."""
import os

import pytest
from cluster.fuzzrun import Fuzz
from helpers.cluster import Fleet

SEQUENCES = int(os.environ.get("PYCACHE_FUZZ_SEQUENCES", "2500"))

SETTINGS = {
    "default": (),
    "n3r2": ("--replicas", "3", "--write-quorum", "2", "--read-quorum", "2"),
    "n1": ("--replicas", "1", "--write-quorum", "1"),
}

# Each went wrong on some node before its fix; every node must now answer as memcached does.
FOUND = [
    [b"set c 5 0 2\r\n10\r\n", b"delete c 0\r\n"],
    [b"set c 5 0 2\r\n10\r\n", b"delete c 0 noreply\r\n", b"get c\r\n"],
    [b"set c 5 0 2\r\n10\r\n", b"touch c 99999999999 NOREPLY\r\n", b"md c\r\n"],
    [b"set c 5 0 2\r\n10\r\n", b"touch c 2592001 NOREPLY\r\n", b"get c\r\n"],
    [b"set c 5 0 2\r\n10\r\n", b"touch c 1000000000 x\r\n"],
    [b"set c 5 0 2\r\n10\r\n", b"mg c l c T-1\r\n", b"md c T100\r\n"],
    [b"set c 5 0 2\r\n10\r\n", b"mg c T-1\r\n", b"get c\r\n"],
    [b"ms c 2 E18446744073709551616\r\n10\r\n", b"get c\r\n", b"set c 0 0 1\r\nx\r\n"],
    [b"append c 0 0 2 noreply x\r\n10\r\n", b"get c\r\n"],
]


@pytest.fixture(scope="module", params=list(SETTINGS))
def fuzz(request, tmp_path_factory, memcached):
    base = 230 + 3 * list(SETTINGS).index(request.param)
    fleet = Fleet(tmp_path_factory, base, 3, "--forward-timeout", "2",
                  *SETTINGS[request.param])
    request.addfinalizer(fleet.stop)
    fleet.start()
    return Fuzz(fleet, memcached.port)


def test_same_bytes_as_memcached_through_any_node(fuzz):
    seeds = range(SEQUENCES)
    for seed in seeds:
        diff = fuzz.check(seed)
        assert diff is None, str(diff)


@pytest.mark.parametrize("case", range(len(FOUND)))
def test_differences_found_before_stay_fixed(fuzz, case):
    for node in range(3):
        ours, theirs = fuzz.replies(node, FOUND[case])
        assert ours == theirs, f"node {node}: {FOUND[case]!r}\n{ours!r}\n{theirs!r}"


def test_the_harness_sees_a_difference(fuzz):
    """Negative control: ms with I stores a CAS it finds older than the item's as stale; a
    client's small number is older than the cluster's versions (another number space, by
    design), so this sequence must differ where replicated, and the harness must say so."""
    seq = [b"set b 5 0 2\r\n10\r\n", b"ms b 5 I C99999999\r\nabbbc\r\n"]
    replies = [fuzz.replies(node, seq) for node in range(3)]
    assert any(ours != theirs for ours, theirs in replies)
