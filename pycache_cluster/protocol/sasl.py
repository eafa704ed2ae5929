"""SASL PLAIN for the binary protocol (memcached -S): the password file and the check.

The file has one `user:password` per line (more `:`-separated fields after the password are
ignored), memcached's MEMCACHED_SASL_PWDB format. It is read at every authentication, as
memcached reads it, so a changed password counts from the next one on.
"""
from __future__ import annotations

import hashlib
import hmac


def check_plain(path: str, message: bytes) -> bool:
    """True when `message` (PLAIN: authzid NUL authcid NUL password) names a user of the
    file with that password. An authorization identity other than the user's own is
    refused (no proxying), as Cyrus SASL's default policy does."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        return False
    authzid, user, password = parts
    if not user or (authzid and authzid != user):
        return False
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    stored = None
    for line in lines:
        name, sep, rest = line.partition(b":")
        if sep and name == user and stored is None:
            stored = rest.split(b":", 1)[0]
    # Every line is read and digests of equal length compared, so that neither the user's
    # place in the file nor the password's length shows in the time taken.
    want = hashlib.sha256(stored if stored is not None else b"\0").digest()
    ok = hmac.compare_digest(want, hashlib.sha256(password).digest())
    return ok and stored is not None
