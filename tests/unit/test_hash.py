"""The store's murmur3 is bit-identical to the mmh3 package the cluster's ring uses."""
import mmh3
from hypothesis import given
from hypothesis import strategies as st

from pycache_cluster.store import hash_key


@given(key=st.binary(max_size=300), seed=st.sampled_from([0, 1, 0xFFFFFFFF]))
def test_matches_mmh3_on_random_keys(key, seed):
    assert hash_key(key, seed) == mmh3.hash(key, seed, signed=False)


def test_matches_mmh3_on_every_tail_length():
    for n in range(64):
        key = bytes(range(n))
        assert hash_key(key) == mmh3.hash(key, 0, signed=False)


def test_known_vector():
    # The reference murmur3_x86_32 value for "hello", seed 0.
    assert hash_key(b"hello") == 0x248BFA47
