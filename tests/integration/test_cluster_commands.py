"""`cluster members` and `stats gossip` on one node with gossip on; without gossip both are
unknown commands, as on memcached."""
import re

import pytest
from helpers.servers import free_port, start_node
from helpers.wire import Conn

from pycache_cluster.gossip import COUNTERS


@pytest.fixture(scope="module")
def member(request):
    gossip_port = free_port(udp=True)
    node = start_node("--node-name", "solo", "--gossip-port", str(gossip_port))
    request.addfinalizer(node.stop)
    node.gossip_port = gossip_port
    return node


@pytest.fixture
def mconn(member):
    with Conn(member.port) as c:
        yield c


def test_cluster_members_lists_itself_alive(member, mconn):
    # Incarnation 1: its metadata went from joining to active as gossip started, before the
    # node listened for clients.
    mconn.expect(b"cluster members\r\n",
                 b"MEMBER solo 127.0.0.1:%d alive 1\r\nEND\r\n" % member.gossip_port)


def test_stats_gossip_shape(mconn):
    reply = mconn.call(b"stats gossip\r\n")
    assert reply.endswith(b"END\r\n")
    lines = reply.split(b"\r\n")[:-2]
    assert all(re.fullmatch(rb"STAT [a-z_]+ \d+", line) for line in lines), reply
    stats = {k.decode(): int(v) for k, v in (line.split()[1:] for line in lines)}
    gauges = {"members_alive", "members_suspect", "members_dead", "members_left",
              "incarnation", "health_score", "broadcast_queue", "bytes_sent", "bytes_received"}
    assert set(stats) == gauges | set(COUNTERS)
    assert stats["members_alive"] == 1 and stats["members_dead"] == 0
    assert stats["incarnation"] == 1


def test_cluster_errors(mconn):
    mconn.expect(b"cluster\r\n", b"ERROR\r\n")
    mconn.expect(b"cluster bogus\r\n", b"ERROR\r\n")
    mconn.expect(b"cluster members now\r\n", b"CLIENT_ERROR bad command line format\r\n")
    # The connection goes on: memcached's own commands and stats are untouched.
    mconn.expect(b"set a 0 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n")
    mconn.expect(b"stats bogus\r\n", b"ERROR\r\n")
    assert mconn.call(b"stats settings\r\n").startswith(b"STAT maxbytes ")


def test_without_gossip_they_are_unknown_commands(conn):
    # Our node without --gossip-port and memcached answer the same.
    conn.expect(b"cluster members\r\n", b"ERROR\r\n")
    conn.expect(b"stats gossip\r\n", b"ERROR\r\n")
