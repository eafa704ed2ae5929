"""Keyring file format and rotation; the sealed envelope rejects forged and replayed packets."""

import base64
import os

import pytest

from pycache_cluster.gossip.envelope import AuthError, Envelope, EnvelopeError, ReplayError
from pycache_cluster.gossip.keyring import Keyring, KeyringError

K1, K2, K3 = os.urandom(32), os.urandom(16), os.urandom(24)


class Clock:
    def __init__(self, t=1_700_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_key_file_format(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# cluster keys\n\n{base64.b64encode(K1).decode()}\n"
                    f"  {base64.b64encode(K2).decode()}  \n")
    assert Keyring.from_file(str(path)).keys == [K1, K2]


@pytest.mark.parametrize("content", ["", "# only a comment\n", "not base64!\n",
                                     base64.b64encode(b"short").decode() + "\n"])
def test_bad_key_files_are_refused(tmp_path, content):
    path = tmp_path / "keys"
    path.write_text(content)
    with pytest.raises(KeyringError):
        Keyring.from_file(str(path))


def test_rotation_first_key_encrypts_all_keys_decrypt():
    old, both, new = Keyring([K1]), Keyring([K2, K1]), Keyring([K2])
    aad = b"\x01"
    # A node that already has the new key as secondary still reads the old cluster...
    assert both.decrypt(old.encrypt(b"x", aad), aad)[1] == b"x"
    # ...and once it encrypts with the new key, old-only nodes cannot read it, new-only can.
    sealed = both.encrypt(b"y", aad)
    assert new.decrypt(sealed, aad)[1] == b"y"
    with pytest.raises(ValueError):
        old.decrypt(sealed, aad)


def test_sealed_round_trip_and_tamper_detection():
    clock = Clock()
    tx = Envelope(Keyring([K1]), 30, clock)
    rx = Envelope(Keyring([K3, K1]), 30, clock)
    data = tx.seal(b"payload")
    assert len(data) == len(b"payload") + tx.overhead()
    assert rx.open(data) == b"payload"
    forged = bytearray(tx.seal(b"payload"))
    forged[-20] ^= 1
    with pytest.raises(AuthError):
        rx.open(bytes(forged))


def test_wrong_key_and_clear_packets_are_rejected_by_a_keyed_node():
    clock = Clock()
    rx = Envelope(Keyring([K1]), 30, clock)
    with pytest.raises(AuthError):
        rx.open(Envelope(Keyring([K2]), 30, clock).seal(b"p"))
    with pytest.raises(AuthError):
        rx.open(Envelope(None).seal(b"p"))
    with pytest.raises(AuthError):
        Envelope(None).open(Envelope(Keyring([K1]), 30, clock).seal(b"p"))


def test_replayed_packet_is_rejected():
    clock = Clock()
    tx, rx = Envelope(Keyring([K1]), 30, clock), Envelope(Keyring([K1]), 30, clock)
    data = tx.seal(b"ping")
    assert rx.open(data) == b"ping"
    clock.t += 5
    with pytest.raises(ReplayError):
        rx.open(data)


def test_packet_outside_the_window_is_rejected_even_if_never_seen():
    clock = Clock()
    tx, rx = Envelope(Keyring([K1]), 30, clock), Envelope(Keyring([K1]), 30, clock)
    stale = tx.seal(b"old")
    clock.t += 31
    with pytest.raises(ReplayError):
        rx.open(stale)
    ahead = Envelope(Keyring([K1]), 30, Clock(clock.t + 31))  # skew beyond the window
    with pytest.raises(ReplayError):
        rx.open(ahead.seal(b"future"))
    assert rx.open(tx.seal(b"fresh")) == b"fresh"


def test_replay_memory_is_bounded_by_the_window():
    clock = Clock()
    tx, rx = Envelope(Keyring([K1]), 10, clock), Envelope(Keyring([K1]), 10, clock)
    for _ in range(50):
        rx.open(tx.seal(b"x"))
        clock.t += 1
    assert len(rx._seen) <= 21


def test_empty_and_truncated_input_are_errors():
    rx = Envelope(Keyring([K1]))
    for data in (b"", b"\x01", b"\x01" + bytes(20)):
        with pytest.raises(EnvelopeError):
            rx.open(data)
