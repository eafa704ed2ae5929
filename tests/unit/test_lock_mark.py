"""The persisted token mark: a node's lock service restarted (a new instance, an empty table)
after its wall clock stepped back still refuses every token at or below those it granted
before; without the mark it grants them (the negative control showing what the mark is for).
The service runs in process on a fake clock and wall clock, fed replica commands directly."""
import asyncio
from types import SimpleNamespace

import pytest

from pycache_cluster.config import Config
from pycache_cluster.locks import service
from pycache_cluster.locks.mark import TokenMark
from pycache_cluster.protocol.extensions import Extensions


def restart(monkeypatch, wall_us: int, state_dir: str) -> service.Locks:
    monkeypatch.setattr(service, "wall_token", lambda: wall_us)
    now = [1000.0]
    locks = service.Locks(Config(lock_max_ttl=1.0, lock_state_dir=state_dir),
                          clock=lambda: now[0])
    node = SimpleNamespace(cluster=None, state=SimpleNamespace(extensions=Extensions()))
    asyncio.run(locks.start(node))
    now[0] += 2.0       # past the quarantine
    return locks


def grant(locks, token: int) -> list[bytes]:
    return locks.answer([b"lock", b"grant", b"n", b"me", b"%d" % token, b"500", b"-"]).split()


@pytest.mark.parametrize("persisted", [True, False])
def test_tokens_survive_a_restart_with_the_clock_stepped_back(monkeypatch, tmp_path,
                                                              persisted):
    state_dir = str(tmp_path) if persisted else ""
    first = restart(monkeypatch, 5_000_000_000, state_dir)
    assert grant(first, 5_000_000_123) == [b"GRANTED", b"5000000123"]
    second = restart(monkeypatch, 1_000_000, state_dir)      # the clock went back
    got = grant(second, 1_000_001)
    if persisted:
        assert got[0] == b"LOW" and int(got[1]) > 5_000_000_123
    else:
        assert got == [b"GRANTED", b"1000001"], "without the mark the step back goes unseen"


def test_the_mark_reserves_ahead_and_survives_reopening(tmp_path):
    path = str(tmp_path / "m")
    mark = TokenMark(path, block=100)
    mark.cover(7)
    assert mark.reserved == 107
    mark.cover(50)                      # inside the block: no write
    assert TokenMark(path).reserved == 107
    mark.cover(108)
    assert TokenMark(path).reserved == 208
    (tmp_path / "m").write_bytes(b"garbage\n")
    with pytest.raises(ValueError):
        TokenMark(path)
