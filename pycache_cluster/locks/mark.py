"""The persisted token high-water mark: tokens stay increasing across a node's restart even if
the wall clock stepped back while it was down.

Before a node grants a token above what it has reserved, it reserves a block above that token
and makes the new mark durable (write, fsync, rename, fsync of the directory); only then does
it grant. Invariant: every token this node ever granted is <= the mark on disk, so a restart
that starts its table's floor at the mark never grants one of them again or below. Tokens are
microseconds of the wall clock, so a block of one second costs about one fsync per second of
steady granting.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: Tokens reserved at once: one second of wall-clock microseconds.
BLOCK = 1_000_000


class TokenMark:
    """The mark of one node, in `path` (a decimal number and a newline)."""

    def __init__(self, path: str, block: int = BLOCK):
        self.path = path
        self.block = block
        self.reserved = self._read()

    def _read(self) -> int:
        try:
            with open(self.path, "rb") as f:
                text = f.read().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise ValueError(f"lock token mark {self.path} is damaged: {text[:40]!r}")
        return int(text)

    def cover(self, token: int) -> None:
        """Makes `token` safe to grant: on return the mark on disk is at least `token`.
        Raises OSError when the mark cannot be written (the grant must then be refused)."""
        if token <= self.reserved:
            return
        mark = token + self.block
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"%d\n" % mark)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.reserved = mark


def open_mark(directory: str, node: str) -> TokenMark:
    """The mark of the node named `node` (its port when unnamed) in `directory`."""
    os.makedirs(directory, exist_ok=True)
    return TokenMark(os.path.join(directory, f"locks-{node}.mark"))
