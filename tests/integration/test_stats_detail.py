"""`stats detail on|off|dump`: memcached's per-prefix counters, against memcached 1.6.18 and
against a model of stats_prefix.c (hypothesis), with the default delimiter and with -D."""
import mmh3
import pytest
from helpers.servers import memcached_available, start_memcached, start_node
from helpers.wire import Conn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

START = b"flush_all\r\nstats reset\r\nstats detail on\r\n"


@pytest.fixture(scope="module")
def pair(pycache, memcached):
    return pycache, memcached


def run(srv, data: bytes) -> bytes:
    with Conn(srv.port) as c:
        return c.call(data)


def _cas_free(reply: bytes) -> bytes:
    return b"\r\n".join(b" ".join(line.split()[:4]) if line.startswith(b"VALUE ") else line
                        for line in reply.split(b"\r\n"))


CONVERSATION = (
    b"set a:1 0 0 1\r\nx\r\nget a:1 a:2 b:1 nocolon\r\ngets a:1\r\ngat 0 a:1\r\ngats 0 b:2\r\n"
    b"touch a:1 0\r\nmg a:1 v\r\nmg a:9 v\r\nms a:3 1\r\nx\r\nmd a:3\r\nma a:1\r\n"
    b"delete a:1\r\ndelete b:7\r\nincr a:1 1\r\nadd c:1 0 0 1\r\nx\r\nset :x 0 0 1\r\nx\r\n"
    b"set x: 0 0 1\r\nx\r\nset d::e 0 0 1\r\nx\r\nappend e:1 0 0 1\r\nx\r\n"
    b"cas f:1 0 0 1 5\r\nx\r\nset g:1 0 0 1\r\nxyz\r\nset h:1 x 0 1\r\nx\r\n"
    b"set i:1 0 0 2000000 noreply\r\n" + b"v" * 2000002 + b"\r\n"
    b"stats detail dump\r\nstats detail off\r\nget a:1\r\nstats detail dump\r\n"
    b"stats detail\r\nstats detail x\r\nstats detail on extra\r\nstats reset\r\n"
    b"stats detail dump\r\n")


def test_same_bytes_as_memcached(pair):
    ours, theirs = (_cas_free(run(srv, START + CONVERSATION)) for srv in pair)
    assert ours == theirs
    assert b"PREFIX a get 4 hit 3 set 1 del 1\r\n" in ours


def test_settings_show_detail(pair):
    for srv in pair:
        run(srv, b"stats detail off\r\n")
    before = [run(srv, b"stats settings\r\n") for srv in pair]
    after = [run(srv, b"stats detail on\r\nstats settings\r\n") for srv in pair]
    for replies in (before, after):
        got = [{line.split()[1]: line.split()[2] for line in r.splitlines()
                if line.split()[1:2] in ([b"detail_enabled"], [b"stat_key_prefix"])}
               for r in replies]
        assert got[0] == got[1]
    assert b"STAT detail_enabled yes" in after[0]


# -- against a model ---------------------------------------------------------------------

PREFIXES = [b"", b"a", b"b", b"user", b"user:x", b"sess", b"zz"]
KEYS = st.builds(lambda p, sep, tail: p + sep + tail, st.sampled_from(PREFIXES),
                 st.sampled_from([b":", b":", b"/", b""]), st.sampled_from([b"1", b"2", b"k"]))
OPS = st.lists(st.tuples(st.sampled_from(["get", "set", "add", "delete", "incr", "mg",
                                          "detail_off", "detail_on"]), KEYS),
               min_size=1, max_size=30)


class PrefixModel:
    """memcached's stats_prefix.c: 256 buckets of murmur3(prefix), newest first."""

    def __init__(self, delimiter: bytes):
        self.delimiter = delimiter
        self.buckets: list[list[list]] = [[] for _ in range(256)]
        self.on = True

    def entry(self, key: bytes):
        if self.delimiter not in key:
            return None
        prefix = key[:key.index(self.delimiter)]
        bucket = self.buckets[mmh3.hash(prefix, 0, signed=False) % 256]
        for e in bucket:
            if e[0] == prefix:
                return e
        e = [prefix, 0, 0, 0, 0]
        bucket.insert(0, e)
        return e

    def count(self, key: bytes, field: int, hit: bool = False):
        e = self.on and self.entry(key)
        if e:
            e[field] += 1
            if field == 1 and hit:
                e[2] += 1

    def dump(self) -> bytes:
        return b"".join(b"PREFIX %s get %d hit %d set %d del %d\r\n" % tuple(e)
                        for bucket in self.buckets for e in bucket) + b"END\r\n"


def play(ops, model: PrefixModel) -> bytes:
    held: set[bytes] = set()
    out = []
    for op, key in ops:
        if op == "detail_off" or op == "detail_on":
            model.on = op == "detail_on"
            out.append(b"stats detail %s\r\n" % op[7:].encode())
        elif op == "get":
            model.count(key, 1, hit=key in held)
            out.append(b"get " + key + b"\r\n")
        elif op in ("set", "add"):
            model.count(key, 3)
            held.add(key)
            out.append(b"%s %s 0 0 1\r\n1\r\n" % (op.encode(), key))
        elif op == "delete":
            model.count(key, 4)
            held.discard(key)
            out.append(b"delete " + key + b"\r\n")
        else:   # not counted by memcached
            out.append(b"incr " + key + b" 1\r\n" if op == "incr" else b"mg " + key + b" v\r\n")
    return b"".join(out) + b"stats detail dump\r\n"


def _tail_dump(reply: bytes) -> bytes:
    lines = reply.split(b"\r\n")
    start = max(i for i, line in enumerate(lines)
                if not line.startswith(b"PREFIX ") and i < len(lines) - 2) + 1
    return b"\r\n".join(lines[start:])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
def test_counts_follow_the_model_and_memcached(pair, ops):
    model = PrefixModel(b":")
    data = START + play(ops, model)
    ours, theirs = (run(srv, data) for srv in pair)
    assert _tail_dump(ours) == model.dump()
    assert ours == theirs


@pytest.fixture(scope="module")
def slash_pair(request):
    """Both servers with -D /, which also turns detail on from the start."""
    ours = start_node("-D", "/")
    request.addfinalizer(ours.stop)
    if not memcached_available():
        pytest.skip("memcached 1.6.18 binary not installed")
    theirs = start_memcached("-D", "/")
    request.addfinalizer(theirs.stop)
    for srv in (ours, theirs):
        assert b"STAT detail_enabled yes\r\n" in run(srv, b"stats settings\r\n")
    return ours, theirs


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
def test_delimiter_flag(slash_pair, ops):
    model = PrefixModel(b"/")
    data = START + play(ops, model)     # on again: an example may have ended with it off
    ours, theirs = (run(srv, data) for srv in slash_pair)
    assert _tail_dump(ours) == model.dump()
    assert ours == theirs
    settings_lines = [run(srv, b"stats settings\r\n") for srv in slash_pair]
    assert all(b"STAT stat_key_prefix /\r\n" in s for s in settings_lines)
