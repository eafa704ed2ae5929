"""Ascii auth (-Y) in a cluster: clients prove a user, peer links prove the cluster key, and
requests forwarded between the members work as without auth."""
import base64
import os

import pytest
from helpers.cluster import NodeProcess, wait_for
from helpers.wire import Conn

AUTH = b"set a 0 0 12\r\nalice s3cret\r\n"


def _client(node: NodeProcess) -> Conn:
    c = Conn(node.port, host=node.host)
    c.send(AUTH)
    assert c.read_until(b"\r\n") == b"STORED\r\n"
    return c


@pytest.fixture(scope="module")
def pair(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authcluster")
    key, users = tmp / "cluster.key", tmp / "users"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    users.write_bytes(b"alice:s3cret\n")
    nodes = [NodeProcess(f"au{i}", f"127.0.0.{190 + i}", key,
                         extra=("-Y", str(users), "--replicas", "1", "--write-quorum", "1"))
             for i in range(2)]
    for n in nodes:
        request.addfinalizer(n.stop)
    nodes[0].start()
    nodes[1].start(join=[nodes[0].addr])

    def ring_of_two():
        with _client(nodes[0]) as a, _client(nodes[1]) as b:
            return all(b" nodes=2 " in c.call(b"cluster ring\r\n") for c in (a, b))
    wait_for(ring_of_two, 30, "both members in both rings")
    return nodes


def test_forwarded_requests_work_behind_auth(pair):
    a, b = pair
    with _client(a) as ca, _client(b) as cb:
        keys = [b"k%d" % i for i in range(40)]
        owners = {k: ca.call(b"cluster owners " + k + b"\r\n").split()[1] for k in keys}
        assert set(owners.values()) == {b"au0", b"au1"}      # some keys are forwarded
        for k in keys:
            ca.expect(b"set " + k + b" 0 0 2\r\nv1\r\n", b"STORED\r\n")
        got = cb.call(b"get " + b" ".join(keys) + b"\r\n")
        assert got.count(b"VALUE ") == len(keys)
        assert cb.call(b"stats cluster\r\n").count(b"forward_errors 0") == 1


def test_unauthenticated_clients_are_refused_in_a_cluster(pair):
    with Conn(pair[0].port, host=pair[0].host) as c:
        c.send(b"get k1\r\n")
        assert c.read_until(b"\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
        # The peer handshake is no way around it: without the cluster key it fails.
        c.send(b"cluster peer intruder 00\r\n")
        line = c.read_until(b"\r\n")
        assert line.startswith(b"PEER au0 ")
        c.send(b"cluster auth " + b"0" * 64 + b"\r\n")
        assert c.read_until(b"\r\n").startswith(b"CLIENT_ERROR")
        c.send(b"get k1\r\n")
        assert c.read_until(b"\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
