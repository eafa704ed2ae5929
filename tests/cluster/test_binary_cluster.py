"""The binary protocol in a cluster: served only where one node alone answers for the key
(--replicas 1, this node its owner); elsewhere a clear error, never a wrong answer."""
from helpers.binary import FLUSH, GET, GETK, NOOP, SET, SETQ, VERSION, call, req, store
from helpers.cluster import owned_keys

NOT_MY_VBUCKET, NOT_SUPPORTED = 0x07, 0x83


def test_one_copy_per_key_serves_own_keys_and_refuses_others(make_fleet):
    fleet = make_fleet(201, 2, "--replicas", "1", "--write-quorum", "1", "--read-quorum", "1")
    fleet.start()
    mine, theirs = owned_keys(fleet, 0, 1)[0], owned_keys(fleet, 1, 1)[0]
    with fleet[0].conn() as c:
        got = call(c, store(SET, mine, b"here", flags=3) + req(GETK, mine))
        assert [(f.status, f.value) for f in got] == [(0, b""), (0, b"here")]
        got = call(c, store(SETQ, theirs, b"value to swallow") + req(GET, theirs, opaque=4))
        assert [(f.status, f.opaque) for f in got] == [(NOT_MY_VBUCKET, 0),
                                                       (NOT_MY_VBUCKET, 4)]
        assert got[0].value.startswith(b"Not my key")
        got = call(c, req(FLUSH) + req(VERSION))
        assert [f.status for f in got] == [NOT_SUPPORTED, 0]
    with fleet[1].conn() as c:      # the owner serves it, and the text protocol sees it
        assert call(c, req(GET, mine))[0].status == NOT_MY_VBUCKET
        assert call(c, store(SET, theirs, b"there"))[0].status == 0
    assert fleet[0].call(b"get " + theirs + b"\r\n") == \
        b"VALUE " + theirs + b" 0 5\r\nthere\r\nEND\r\n"


def test_replicated_cluster_refuses_keyed_commands(make_fleet):
    fleet = make_fleet(204, 2)
    fleet.start()
    with fleet[0].conn() as c:
        got = call(c, store(SET, b"k", b"v") + req(GET, b"k") + req(NOOP, opaque=1))
        assert [f.status for f in got] == [NOT_SUPPORTED, NOT_SUPPORTED, 0]
        assert b"--replicas 1" in got[0].value
