"""memcached's ascii authentication (-Y authfile): the user list and the conversation a
connection holds until it proves one user.

memcached 1.6.18 (proto_text.c try_read_command_asciiauth, authfile.c): until then every
line is read as `set <key> <flags> <exptime> <bytes>`, whose value must be `<user> <pass>`:
- anything else answers `CLIENT_ERROR unauthenticated` (quit, version and blank lines too);
- a value not ending in CRLF: `CLIENT_ERROR bad command line termination`;
- a value without two tokens: `CLIENT_ERROR bad authentication token format`;
- a wrong user or password: `CLIENT_ERROR authentication failure` (auth_errors counts it);
- the right ones: `STORED` (noreply is ignored), and the connection speaks the protocol.
The connection is never closed for a failure, except a line with no newline in its first
2048 bytes. Replies made while unauthenticated share one response object in memcached, so
each replaces the one before it until memcached writes (at the end of a read, or when it
yields after 20 requests): the connection does the same (`Connection._auth_step`).

Plain Python: it runs once per connection, before any cached operation.
"""
from __future__ import annotations

import hmac

from pycache_cluster.protocol._native import parse_u32 as _strtoul

UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
BAD_TERMINATION = b"CLIENT_ERROR bad command line termination\r\n"
BAD_FORMAT = b"CLIENT_ERROR bad authentication token format\r\n"
FAILURE = b"CLIENT_ERROR authentication failure\r\n"
STORED = b"STORED\r\n"

LINE_LIMIT = 2048
# The credentials' value is read whole before it is checked: an unauthenticated client may
# not make the node buffer more than this (memcached's limit is its read buffer's growth).
VALUE_LIMIT = 64 * 1024
_MAX_TOKENS = 24


class AuthFileError(ValueError):
    """The file cannot be used; the message says why, for the start-up error."""


def load(path: str) -> list[tuple[bytes, bytes]]:
    """The (user, password) pairs of an authfile: one `user:password` per line, the
    password running to the end of the line (a CR before the LF is not part of it).
    memcached refuses a line without ':'; it keeps 8 entries at most (silently), here every
    line counts. Blank lines are skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AuthFileError(f"cannot read auth file {path!r}: {e.strerror}") from None
    entries = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        user, sep, password = line.partition(b":")
        if not sep:
            raise AuthFileError(f"auth file {path!r} line {n}: expected user:password")
        entries.append((user, password))
    if not entries:
        raise AuthFileError(f"auth file {path!r} holds no user:password line")
    return entries


def _tokens(text: bytes) -> list[bytes]:
    """memcached's tokenize_command: split on spaces only, up to its token limit, the
    string ending at a NUL."""
    text = text.split(b"\0", 1)[0]
    return [t for t in text.split(b" ") if t][:_MAX_TOKENS - 1]


class AuthFile:
    """The users a node accepts; `counters` is memcached's auth_cmds / auth_errors."""

    def __init__(self, path: str):
        self.path = path
        self.entries = load(path)
        self.cmds = 0
        self.errors = 0

    def check(self, user: bytes, password: bytes) -> bool:
        # Every entry is compared, each in constant time, so the answer's timing says
        # nothing about which user exists or how much of a password matched.
        ok = False
        for u, p in self.entries:
            ok |= hmac.compare_digest(u, user) & hmac.compare_digest(p, password)
        self.cmds += 1
        if not ok:
            self.errors += 1
        return ok

    def session(self) -> Session:
        return Session(self)


class Session:
    """One connection's way through authentication. step() reads from what the client
    sent; `done` once a user is proven."""

    __slots__ = ("done", "users", "want")

    def __init__(self, users: AuthFile):
        self.users = users
        self.want = 0           # bytes of the credentials' value (CRLF included) to read
        self.done = False

    def step(self, data: bytes) -> tuple[int, bytes | None, bool]:
        """(bytes consumed, reply or None, close): 0 consumed and no reply means wait for
        more bytes."""
        if self.want == 0:
            if len(data) < 2:
                return 0, None, False
            el = data.find(b"\n")
            if el < 0:
                return 0, None, len(data) > LINE_LIMIT
            # memcached leaves the CR in: the size token's strtoul stops at it.
            tokens = _tokens(data[:el])
            size = _strtoul(tokens[4]) if len(tokens) >= 5 else None
            if len(tokens) < 5 or tokens[0] != b"set" or size is None:
                return el + 1, UNAUTHENTICATED, False
            self.want = size + 2
            return el + 1, None, False
        if len(data) < self.want:
            return 0, None, self.want > VALUE_LIMIT and len(data) > VALUE_LIMIT
        used, self.want = self.want, 0
        value = data[:used]
        if value[-2:] != b"\r\n":
            return used, BAD_TERMINATION, False
        tokens = _tokens(value[:-2])
        if len(tokens) < 2:
            return used, BAD_FORMAT, False
        if self.users.check(tokens[0], tokens[1]):
            self.done = True
            return used, STORED, False
        return used, FAILURE, False
