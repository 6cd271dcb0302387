"""What a client may rely on (issue 7): a write's error says whether it may have been applied,
leaders are named only when known, and a bad argument fails its call, not the node."""
import asyncio

import pytest

from cluster_support import FAST, WAIT, Cluster, kv, node
from openraft_fast import ForwardToLeader, OutcomeUnknown, ServerState
from openraft_fast.errors import Unreachable
from openraft_fast.network import LocalRouter

# Elections only when a test asks for one, and a lease long enough for a loaded machine.
MANUAL = FAST.replace(heartbeat_interval=0.05, election_timeout_min=0.5, election_timeout_max=1.0,
                      enable_elect=False)


class AppendCutRouter(LocalRouter):
    """A LocalRouter that can cut appends (and heartbeats) on a link but let votes through."""

    def __init__(self) -> None:
        super().__init__()
        self.no_append = set()

    def _send(self, src, dst, kind, msg):
        if (src, dst) in self.no_append and kind in ("append", "heartbeat"):
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(Unreachable(f"{src} -> {dst}: appends cut"))
            return fut
        return super()._send(src, dst, kind, msg)


async def elect(c, i, timeout=WAIT):
    """Have node i stand for election until it leads (a voter refuses while in a lease)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not c.rafts[i].is_leader():
        if loop.time() > deadline:
            raise AssertionError(f"node {i} was not elected within {timeout}s: {c.rafts[i].metrics}")
        await c.rafts[i].trigger.elect()
        await asyncio.sleep(0.05)


def count_payload(c, i, payload, upto):
    buf = c.log(i).log
    return sum(1 for j in range(buf.first_index, min(upto, buf.last_index) + 1) if buf.payload_at(j) == payload)


def test_truncated_write_is_outcome_unknown_and_commits_once(run):
    """The issue's five-node scenario: A's write X reaches B only; C, elected by D and E,
    overwrites X on A; then B, elected by D and E, commits X. A's client must not be told
    that X was refused (it would retry and apply X twice): it gets OutcomeUnknown."""
    A, B, C, D, E = 1, 2, 3, 4, 5

    async def body():
        async with Cluster(MANUAL) as c:
            c.router = router = AppendCutRouter()
            await c.start([A, B, C, D, E], init=False)
            await c.rafts[A].initialize({i: node(i) for i in (A, B, C, D, E)})
            await elect(c, A)
            r = await c.write(A, "before", 0)
            await c.wait_applied(r.log_id.index)

            for dst in (C, D, E):
                router.cut(A, dst)
            router.cut(C, B)
            x = kv("x", 1)
            fut = c.rafts[A].client_write(x)
            x_index = r.log_id.index + 1
            await c.rafts[B].wait(WAIT).metrics(lambda m: m.last_log_index >= x_index, "X on B")
            assert not fut.done()

            router.no_append |= {(C, D), (C, E)}
            await elect(c, C)                      # votes of D and E; its blank reaches A only
            with pytest.raises(OutcomeUnknown) as ei:
                await asyncio.wait_for(fut, WAIT)
            assert ei.value.reason == OutcomeUnknown.TRUNCATED
            assert not isinstance(ei.value, ForwardToLeader)

            router.isolate(C)
            await elect(c, B)                      # votes of D and E; B holds X
            await c.wait_applied(x_index + 1, [A, B, D, E])
            for i in (A, B, D, E):
                assert c.sm(i).data["x"] == 1
                assert count_payload(c, i, x, c.rafts[i].metrics.committed.index) == 1
    run(body())
