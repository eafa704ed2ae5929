"""Wire envelope of every gossip packet and stream frame: clear or sealed, and the replay window.

clear:  0x00 | payload
sealed: 0x01 | nonce(12) | AES-GCM(timestamp_ms u64 | payload) | tag(16), version byte as AAD

A sealed message is accepted once: its timestamp must lie within replay_window of our wall
clock and its nonce must not have been seen in that window. A replay is therefore rejected
either as too old or as a repeated nonce, without per-sender state that a restart would reset.
"""

from __future__ import annotations

import collections
import struct
import time
from collections.abc import Callable

from .keyring import DecryptError, Keyring

CLEAR = 0
SEALED = 1
_TS = struct.Struct(">Q")
_VERSION_AAD = bytes([SEALED])


class EnvelopeError(ValueError):
    """Base of the reasons a packet is dropped; `reason` names the stats counter."""

    reason = "malformed"


class AuthError(EnvelopeError):
    reason = "auth"


class ReplayError(EnvelopeError):
    reason = "replay"


class Envelope:
    def __init__(
        self,
        keyring: Keyring | None,
        replay_window: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._keyring = keyring
        self._window = replay_window
        self._clock = wall_clock
        self._seen: set[bytes] = set()
        self._expiry: collections.deque[tuple[float, bytes]] = collections.deque()

    @property
    def encrypted(self) -> bool:
        return self._keyring is not None

    def overhead(self) -> int:
        """Bytes the envelope adds to a payload."""
        return 1 + (12 + 8 + 16 if self._keyring else 0)

    def seal(self, payload: bytes) -> bytes:
        if self._keyring is None:
            return b"\x00" + payload
        stamp = _TS.pack(int(self._clock() * 1000))
        return _VERSION_AAD + self._keyring.encrypt(stamp + payload, _VERSION_AAD)

    def open(self, data: bytes) -> bytes:
        if not data:
            raise EnvelopeError("empty")
        version = data[0]
        if self._keyring is None:
            if version != CLEAR:
                raise AuthError("sealed message but no cluster key configured")
            return data[1:]
        if version != SEALED:
            raise AuthError("clear message but the cluster requires a key")
        try:
            nonce, plain = self._keyring.decrypt(data[1:], _VERSION_AAD)
        except DecryptError as exc:
            raise AuthError(str(exc)) from None
        if len(plain) < _TS.size:
            raise EnvelopeError("sealed message without timestamp")
        sent = _TS.unpack_from(plain)[0] / 1000.0
        self._accept_once(nonce, sent)
        return plain[_TS.size:]

    def _accept_once(self, nonce: bytes, sent: float) -> None:
        now = self._clock()
        if abs(now - sent) > self._window:
            raise ReplayError("timestamp outside the replay window")
        while self._expiry and self._expiry[0][0] < now:
            self._seen.discard(self._expiry.popleft()[1])
        if nonce in self._seen:
            raise ReplayError("nonce already seen")
        self._seen.add(nonce)
        # A nonce accepted now can only be replayed while its timestamp (<= now + window) is
        # still inside the window, so remembering it for two windows is enough.
        self._expiry.append((now + 2 * self._window, nonce))
