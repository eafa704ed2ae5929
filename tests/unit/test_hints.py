"""Hinted handoff's queue while a replay batch is out: hints dropped past the bound meanwhile
are not taken for the batch's, and hints added meanwhile stay queued."""
import asyncio

from pycache_cluster.cluster.hints import Hints


class HeldLink:
    """A peer link whose replies come when the test says."""

    def __init__(self):
        self.sent: list[bytes] = []
        self.replies: list[asyncio.Future] = []

    def call_all(self, request: bytes):
        self.sent.append(request)
        self.replies.append(asyncio.get_running_loop().create_future())
        return [self.replies[-1]]


def test_a_replay_takes_only_its_own_hints_off_the_queue():
    async def scenario():
        hints = Hints(max_count=3)
        for i in range(3):
            hints.add("b", b"ms old%d" % i)
        link = HeldLink()
        replay = asyncio.ensure_future(hints.replay("b", link))
        await asyncio.sleep(0)
        assert link.sent == [b"ms old0", b"ms old1", b"ms old2"]
        for i in range(2):                  # past the bound: old0 and old1 are dropped
            hints.add("b", b"ms new%d" % i)
        for reply in link.replies:
            reply.set_result(b"HD\r\n")
        assert await replay == 3
        return hints

    hints = asyncio.run(scenario())
    assert list(hints.pending["b"]) == [b"ms new0", b"ms new1"]
    assert (hints.count, hints.dropped, hints.replayed) == (2, 2, 3)
    assert hints.bytes == len(b"ms new0") + len(b"ms new1")
