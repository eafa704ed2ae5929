"""Transactions on one key, etcd's Txn().If(compare).Then(write) with an Else that reads, and
the read-modify-write loop `update`, both on memcached's CAS.

A transaction is atomic per key through any node because its write is conditional and the
owner checks the condition: `ms <key> .. C<cas>` stores only if the item's CAS unique is
still <cas>, `md <key> C<cas>` deletes only then, `ms <key> .. ME` stores only if there is no
item. A compare on the version needs that one request. A compare on the value reads the item
(gets), compares, and writes conditionally on the CAS it read; if another client wrote in
between, the write fails and the transaction reads and compares again, so the compare held
at the instant of the write. Every write returns the item's new CAS (the `c` flag).

The logic is written once, as plans: generators that yield the operations they need and
receive the results. The threaded client runs a plan directly, the asyncio client with await
(Client._drive, AsyncClient._drive). Operations a plan yields:
  ("gets", key)                                  -> (value, version), (None, None) if absent
  ("set", key, value, expire, version, add)      -> (status, new version); status "HD" stored
  ("delete", key, version)                       -> (status, None); "HD" deleted
"""
from __future__ import annotations

from typing import Any, NamedTuple

from pymemcache.exceptions import MemcacheError


class TxnConflict(MemcacheError):
    """update() gave up after max_attempts lost races."""


class TxnResult(NamedTuple):
    """succeeded: the compare held (and the write, if any, was applied atomically with it).
    On success, value and version are what was written (None, None after a delete; the value
    read when there was no write); otherwise the key's current value and version (the Else
    read; None, None if the key is absent)."""
    succeeded: bool
    value: Any
    version: int | None


def version_of(token) -> int | None:
    """A CAS unique as an int, from what gets returns (bytes) or a caller's int or str."""
    if token is None:
        return None
    return int(token)


class Txn:
    """client.txn(key).if_value(b"x").then_set(b"y").commit() -> TxnResult.

    At most one compare (if_value, if_version, if_missing; none: unconditional) and one write
    (then_set, then_delete; none: a read that reports whether the compare holds)."""

    def __init__(self, client, key):
        self._client = client
        self.key = key
        self._compare: tuple | None = None
        self._then: tuple | None = None

    def if_value(self, value) -> Txn:
        """The key holds `value` (compared after the serde's deserialize)."""
        return self._set_compare(("value", value))

    def if_version(self, version) -> Txn:
        """The key's CAS unique (gets' second value, or a TxnResult.version) is `version`."""
        return self._set_compare(("version", version_of(version)))

    def if_missing(self) -> Txn:
        """The key is absent."""
        return self._set_compare(("missing",))

    def then_set(self, value, expire: int = 0) -> Txn:
        return self._set_then(("set", value, expire))

    def then_delete(self) -> Txn:
        return self._set_then(("delete",))

    def commit(self):
        """Runs the transaction: a TxnResult (the asyncio client: an awaitable of one)."""
        return self._client._drive(self.plan())

    def _set_compare(self, compare: tuple) -> Txn:
        if self._compare is not None:
            raise ValueError("a transaction has one compare")
        self._compare = compare
        return self

    def _set_then(self, then: tuple) -> Txn:
        if self._then is not None:
            raise ValueError("a transaction has one write")
        self._then = then
        return self

    def _write(self, version: int | None, add: bool = False):
        """The Then operation, conditional on `version` (None: unconditional)."""
        if self._then[0] == "set":
            return ("set", self.key, self._then[1], self._then[2], version, add)
        return ("delete", self.key, version)

    def _written(self, new_version: int | None) -> TxnResult:
        if self._then[0] == "set":
            return TxnResult(True, self._then[1], new_version)
        return TxnResult(True, None, None)

    def plan(self):
        key, compare, then = self.key, self._compare, self._then
        kind = compare[0] if compare else None
        if then is None or (kind == "missing" and then[0] == "delete"):
            # A read: does the compare hold now? (Deleting an absent key changes nothing.)
            value, version = yield ("gets", key)
            if kind == "value":
                held = version is not None and value == compare[1]
            elif kind == "version":
                held = version == compare[1]
            else:
                held = kind is None or version is None
            return TxnResult(held, value, version)
        if kind is None:
            status, version = yield self._write(None)
            return self._written(version)
        if kind == "version":
            status, version = yield self._write(compare[1])
            if status == "HD":
                return self._written(version)
            value, version = yield ("gets", key)
            return TxnResult(False, value, version)
        while True:
            if kind == "missing":
                status, version = yield self._write(None, add=True)
                if status == "HD":
                    return self._written(version)
                value, version = yield ("gets", key)
                if version is not None:
                    return TxnResult(False, value, version)
                continue            # deleted again since the add failed: try again
            value, version = yield ("gets", key)
            if version is None or value != compare[1]:
                return TxnResult(False, value, version)
            status, new_version = yield self._write(version)
            if status == "HD":
                return self._written(new_version)
            # EX: written since our read; NF: deleted since. Read and compare again.


def update_plan(key, fn, expire: int = 0, max_attempts: int | None = None):
    """Read-modify-write: fn(current value, None if absent) -> new value, stored only if the
    key did not change since the read; on a lost race, read and call fn again."""
    attempt = 0
    while max_attempts is None or attempt < max_attempts:
        attempt += 1
        value, version = yield ("gets", key)
        new = fn(value)
        status, _ = yield ("set", key, new, expire, version, version is None)
        if status == "HD":
            return new
    raise TxnConflict(f"update of {key!r} lost {max_attempts} races")
