"""Three real nodes are one cache: whatever node a client talks to, every command sees the same
data, with memcached's exact replies; the ring the nodes report is the one a client rebuilds."""
import random
import re

import pytest
from helpers.cluster import owned_keys

from pycache_cluster.cluster.ring import Ring


@pytest.fixture(autouse=True)
def empty(fleet3):
    fleet3[0].call(b"flush_all\r\n")


def test_written_through_any_node_readable_through_every_other(fleet3):
    for i in range(3):
        for j in range(3):
            key = b"pair:%d:%d" % (i, j)
            assert fleet3[i].call(b"set %s 7 0 3\r\nv%d%d\r\n" % (key, i, j)) == b"STORED\r\n"
            assert fleet3[j].call(b"get %s\r\n" % key) == \
                b"VALUE %s 7 3\r\nv%d%d\r\nEND\r\n" % (key, i, j)


def test_gets_answers_one_cas_everywhere_and_cas_works_through_any_node(fleet3):
    for key in (owned_keys(fleet3, 0, 1, "cas")[0], owned_keys(fleet3, 2, 1, "cas")[0]):
        fleet3[1].call(b"set %s 0 0 1\r\na\r\n" % key)
        seen = {fleet3[i].call(b"gets %s\r\n" % key) for i in range(3)}
        assert len(seen) == 1
        cas = int(seen.pop().split(b"\r\n")[0].split()[-1])
        assert fleet3[1].call(b"cas %s 0 0 1 %d\r\nb\r\n" % (key, cas)) == b"STORED\r\n"
        assert fleet3[2].call(b"cas %s 0 0 1 %d\r\nc\r\n" % (key, cas)) == b"EXISTS\r\n"
        assert fleet3[0].call(b"get %s\r\n" % key) == b"VALUE %s 0 1\r\nb\r\nEND\r\n" % key
        assert fleet3[0].call(b"mg %s c\r\n" % key) == fleet3[2].call(b"mg %s c\r\n" % key)


def test_every_text_command_through_a_node_that_does_not_own_the_key(fleet3):
    key = owned_keys(fleet3, 1, 1, "text")[0]
    via = fleet3[0]
    script = [
        (b"add K 1 0 2\r\nab\r\n", b"STORED\r\n"),
        (b"add K 1 0 2\r\nab\r\n", b"NOT_STORED\r\n"),
        (b"append K 0 0 2\r\ncd\r\n", b"STORED\r\n"),
        (b"prepend K 0 0 2\r\nzz\r\n", b"STORED\r\n"),
        (b"get K\r\n", b"VALUE K 1 6\r\nzzabcd\r\nEND\r\n"),
        (b"replace K 2 0 1\r\n5\r\n", b"STORED\r\n"),
        (b"incr K 10\r\n", b"15\r\n"),
        (b"decr K 20\r\n", b"0\r\n"),
        (b"incr K x\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"touch K 100\r\n", b"TOUCHED\r\n"),
        (b"gat 0 K\r\n", b"VALUE K 2 2\r\n0 \r\nEND\r\n"),  # padded, as memcached
        (b"delete K\r\n", b"DELETED\r\n"),
        (b"delete K\r\n", b"NOT_FOUND\r\n"),
        (b"incr K 1\r\n", b"NOT_FOUND\r\n"),
        (b"touch K 1\r\n", b"NOT_FOUND\r\n"),
        (b"replace K 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"set K 0 0 1 noreply\r\nq\r\nget K\r\n", b"VALUE K 0 1\r\nq\r\nEND\r\n"),
        (b"delete K noreply\r\nget K\r\n", b"END\r\n"),
        (b"delete K 0 noreply\r\n", b""),
        (b"set K 0 0 2\r\nabc\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
        (b"set K x 0 1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ]
    with via.conn() as c:
        for req, want in script:
            c.expect(req.replace(b"K", key), want.replace(b"K", key))
    assert via.stats("cluster")["forwarded"] > 0


def test_meta_commands_flags_opaque_quiet_and_base64_keys_through_any_node(fleet3):
    key = owned_keys(fleet3, 2, 1, "meta")[0]
    with fleet3[0].conn() as c:
        c.expect(b"ms %s 2 T0 F5 O1 k q\r\nhi\r\n" % key, b"")
        c.expect(b"mg %s v f O2 k s\r\n" % key, b"VA 2 f5 O2 k%s s2\r\nhi\r\n" % key)
        c.expect(b"mg %s v q\r\nmg nokey:%s v q\r\nmg nokey:%s O9 k\r\n" % (key, key, key),
                 b"VA 2\r\nhi\r\nEN O9 knokey:%s\r\n" % key)
        c.expect(b"ma %s q\r\n" % key, b"CLIENT_ERROR cannot increment or decrement "
                 b"non-numeric value\r\n")
        c.expect(b"ms %s 1 MS\r\n7\r\nma %s q D3\r\nma %s v\r\n" % (key, key, key),
                 b"HD\r\nVA 2\r\n11\r\n")
        c.expect(b"md %s q\r\nmd %s q\r\nmg %s\r\n" % (key, key, key), b"NF\r\nEN\r\n")
        c.expect(b"mg %s q q\r\n" % key, b"CLIENT_ERROR duplicate flag\r\n")
        c.expect(b"ms %s 3 I C1\r\nabc\r\n" % key, b"NF\r\n")
        # A binary key travels base64 (b) and is hashed as its decoded bytes.
        c.expect(b"ms Zm9vYmFy 3 b k\r\nbin\r\n", b"HD kZm9vYmFy b\r\n")
        c.expect(b"get foobar\r\n", b"VALUE foobar 0 3\r\nbin\r\nEND\r\n")
        me = c.call(b"me foobar\r\n")
        assert re.fullmatch(rb"ME Zm9vYmFy exp=-1 la=\d+ cas=\d+ fetch=yes cls=1 size=68\r\n",
                            me)


def test_a_multiget_of_1000_keys_through_one_node_returns_every_key_in_order(fleet3):
    keys = [b"many:%d" % i for i in range(1000)]
    rnd = random.Random(4)
    for i, key in enumerate(keys):
        fleet3[i % 3].call(b"set %s %d 0 %d noreply\r\n%s\r\n" % (key, i, len(key), key))
    rnd.shuffle(keys)
    asked = keys + [b"absent:%d" % i for i in range(50)]
    rnd.shuffle(asked)
    with fleet3[1].conn() as c:
        out = c.call(b"gets " + b" ".join(asked) + b"\r\n")
    got = re.findall(rb"VALUE (\S+) \d+ \d+ \d+\r\n", out)
    assert got == [k for k in asked if k.startswith(b"many:")]
    assert out.endswith(b"END\r\n")
    assert fleet3[1].stats("cluster")["fanout_batches"] >= 1


def test_pipelined_local_and_remote_requests_keep_their_order(fleet3):
    local = owned_keys(fleet3, 0, 5, "pl")
    remote = owned_keys(fleet3, 1, 5, "pr") + owned_keys(fleet3, 2, 5, "pq")
    keys = local + remote
    random.Random(9).shuffle(keys)
    req, want = [], []
    for i, key in enumerate(keys):
        req.append(b"set %s 0 0 1\r\n%d\r\n" % (key, i % 10))
        want.append(b"STORED\r\n")
        req.append(b"get %s %s\r\n" % (key, keys[0]))
        value = b"VALUE %s 0 1\r\n%d\r\n" % (key, i % 10)
        first = b"VALUE %s 0 1\r\n%d\r\n" % (keys[0], 0)
        want.append(value + (first if i else value) + b"END\r\n")
        req.append(b"mn\r\n")
        want.append(b"MN\r\n")
    expected = b"".join(want)
    with fleet3[0].conn() as c:
        assert c.send(b"".join(req)).read_exact(len(expected)) == expected


def test_flush_all_empties_the_whole_cluster(fleet3):
    keys = [owned_keys(fleet3, n, 2, "fl")[i] for n in range(3) for i in range(2)]
    for key in keys:
        fleet3[0].call(b"set %s 0 0 1\r\nx\r\n" % key)
    assert fleet3[2].call(b"flush_all\r\n") == b"OK\r\n"
    for node in fleet3.nodes:
        assert node.call(b"get " + b" ".join(keys) + b"\r\n") == b"END\r\n"
    # noreply, and in order with what follows on the same connection.
    with fleet3[1].conn() as c:
        c.expect(b"set %s 0 0 1\r\nx\r\nflush_all noreply\r\nset %s 0 0 1\r\ny\r\n"
                 % (keys[0], keys[3]), b"STORED\r\nSTORED\r\n")
        c.expect(b"get %s %s\r\n" % (keys[0], keys[3]),
                 b"VALUE %s 0 1\r\ny\r\nEND\r\n" % keys[3])


def test_the_ring_a_node_reports_is_the_ring_a_client_rebuilds(fleet3):
    reply = fleet3[1].call(b"cluster ring\r\n").decode()
    head = dict(kv.split("=") for kv in reply.splitlines()[0].split()[1:])
    nodes = [line.split() for line in reply.splitlines()[1:-1]]
    weights = {n[1]: int(n[3].split("=")[1]) for n in nodes}
    ring = Ring(int(head["vnodes"]), weights)
    assert ring.checksum == head["checksum"] and int(head["nodes"]) == 3
    assert {n[1]: n[2] for n in nodes} == {p.name: f"{p.host}:{p.port}" for p in fleet3.nodes}
    assert abs(sum(float(n[4].split("=")[1]) for n in nodes) - 1) < 1e-5
    replicas = fleet3[0].stats("cluster")["replicas"]
    for i in range(200):
        key = b"owner:%d" % i
        want = b"".join(b"OWNER %s %s\r\n" % (n.encode(), {p.name: f"{p.host}:{p.port}"
                                                          for p in fleet3.nodes}[n].encode())
                        for n in ring.owners(key, replicas)) + b"END\r\n"
        assert fleet3[i % 3].call(b"cluster owners %s\r\n" % key) == want
    assert fleet3[0].call(b"cluster owners\r\ncluster bogus\r\ncluster\r\n") == \
        b"CLIENT_ERROR bad command line format\r\nERROR\r\nERROR\r\n"


def test_keys_a_node_owns_are_never_forwarded(fleet3):
    keys = owned_keys(fleet3, 2, 20, "own")
    before = fleet3[2].stats("cluster")["forwarded"]
    with fleet3[2].conn() as c:
        for key in keys:
            c.expect(b"set %s 0 0 1\r\nx\r\nget %s\r\n" % (key, key),
                     b"STORED\r\nVALUE %s 0 1\r\nx\r\nEND\r\n" % key)
    assert fleet3[2].stats("cluster")["forwarded"] == before
