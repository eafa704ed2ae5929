"""Edge cases differential runs found, sent to our node and to memcached 1.6.18 alike: an
item an unsent mg reply holds when incr/ma rewrites it, a future-dated flush_all after an
earlier one, and a bad data chunk followed by junk that closes the connection."""
import socket
import time

import pytest
from helpers.wire import Conn


@pytest.fixture(scope="module")
def pair(pycache, memcached):
    return pycache, memcached


def both(pair, steps) -> list[list[bytes]]:
    """Runs `steps` (bytes to send, fenced by mn, or seconds to sleep) on a fresh connection
    to each server; returns each server's replies per step."""
    out = []
    for srv in pair:
        with Conn(srv.port) as c:
            c.expect(b"flush_all\r\n", b"OK\r\n")
            replies = []
            for step in steps:
                if isinstance(step, float):
                    time.sleep(step)
                else:
                    replies.append(c.call(step))
            out.append(replies)
    return out


# The second read references the item until its reply is written, so the counter's rewrite
# is a new item (memcached's refcount > 2): never fetched, whatever the value's length.
PINNED = [
    b"set k 0 0 1\r\n5\r\nmg k v\r\nincr k 1\r\nmg k h l t v\r\nmg k h\r\n",
    b"set k 0 0 1\r\n5\r\nmg k\r\nincr k 1\r\nmg k h v\r\n",
    b"set k 0 0 1\r\n5\r\nmg k v\r\nma k\r\nmg k h l v\r\n",
    b"set k 0 0 2\r\n15\r\nmg k v\r\nma k MD\r\nmg k h v\r\n",
    b"set k 0 0 2\r\n15\r\nmg k v\r\ndecr k 10\r\nmg k h v\r\n",
    b"set k 0 0 1\r\n5\r\nmg k v\r\nincr k 100\r\nmg k h v\r\n",
    # Not pinned: a written get, or an mn write point, lets the rewrite happen in place.
    b"set k 0 0 1\r\n5\r\nget k\r\nincr k 1\r\nmg k h v\r\n",
    b"set k 0 0 1\r\n5\r\nmg k v\r\nmn\r\nincr k 1\r\nmg k h v\r\n",
    b"set k 0 0 2\r\n15\r\nget k\r\ndecr k 10\r\nmg k h v\r\n",
]


@pytest.mark.parametrize("pipeline", PINNED)
def test_counter_rewrite_after_an_unsent_read(pair, pipeline):
    ours, theirs = both(pair, [pipeline])
    assert ours == theirs


def test_future_flush_keeps_what_an_earlier_flush_invalidated(pair):
    # memcached reclaims flushed items from its LRU tails within about a second; after that
    # a flush_all in the future cannot bring them back. Items stored after it stay.
    steps = [b"set k 0 0 1\r\n5\r\n", b"flush_all\r\n", 2.0,
             (b"set j 0 0 1\r\n6\r\nflush_all 100\r\nget k j\r\nflush_all 1000000000\r\n"
              b"get k j\r\n")]
    ours, theirs = both(pair, steps)
    assert ours == theirs
    assert ours[-1] == b"STORED\r\nOK\r\nVALUE j 0 1\r\n6\r\nEND\r\nOK\r\nVALUE j 0 1\r\n6\r\nEND\r\n"


def test_future_flush_at_once_keeps_the_earlier_flush(pycache):
    # In the same pipeline memcached has not reclaimed the item yet and would show it again;
    # here what a flush_all invalidated never comes back.
    with Conn(pycache.port) as c:
        c.expect(b"set k 0 0 1\r\n5\r\nflush_all\r\nflush_all 100\r\nget k\r\nmg k v\r\n",
                 b"STORED\r\nOK\r\nOK\r\nEND\r\nEN\r\n")
        c.expect(b"set k 0 0 1\r\n5\r\nflush_all 100\r\nget k\r\n",
                 b"STORED\r\nOK\r\nVALUE k 0 1\r\n5\r\nEND\r\n")


def _two_reads(port: int, first: bytes, second: bytes) -> bytes:
    """Sends `first`, lets the server read it alone, then `second`; returns every byte until
    the server closes (or goes quiet for a second)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(first)
        time.sleep(0.2)
        s.sendall(second)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            out += b"<open>"
        return out


JUNK = b"z" * 3000      # no newline in memcached's first 2048 bytes: it closes


@pytest.mark.parametrize("first,second,reply", [
    (b"set k 0 0 1\r\n", b"xy" + JUNK, b"CLIENT_ERROR bad data chunk\r\n"),
    (b"get a\r\nset k 0 0 1\r\n", b"xy" + JUNK, b"END\r\nCLIENT_ERROR bad data chunk\r\n"),
    (b"set k 0 0 1\r\nx", b"yz" + JUNK, b"CLIENT_ERROR bad data chunk\r\n"),
    (b"ms k 2\r\n", b"abcd" + JUNK, b"CLIENT_ERROR bad data chunk\r\n"),
    # Read with its command line, the value's reply is dropped with the close (memcached's
    # read buffer still held the junk).
    (b"version\r\n", b"set k 0 0 1\r\nxy" + JUNK, b"VERSION 1.6.18\r\n"),
    # A value too large is swallowed the same way.
    (b"set k 0 0 2000000\r\n", b"x" * 2000002 + JUNK,
     b"SERVER_ERROR object too large for cache\r\n"),
])
def test_bad_chunk_reply_survives_the_close(pair, first, second, reply):
    ours, theirs = (_two_reads(srv.port, first, second) for srv in pair)
    assert ours == theirs == reply


def test_node_serves_others_after_a_bad_chunk_close(pycache):
    with Conn(pycache.port) as other:
        assert _two_reads(pycache.port, b"set k 0 0 1\r\n", b"xy" + JUNK) == \
            b"CLIENT_ERROR bad data chunk\r\n"
        other.expect(b"version\r\n", b"VERSION 1.6.18\r\n")
