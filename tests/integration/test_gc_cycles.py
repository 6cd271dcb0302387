"""The write path creates no reference cycles: every object a write allocates is freed by
reference counting, so the cyclic garbage collector finds nothing to do however many writes
run (it then only costs its scans, which gc.freeze() after startup or a higher gen0 threshold
take away: see docs/performance.md)."""
import asyncio
import gc

from openraft_fast import Config, ForwardToLeader, Node, Raft, ServerState
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, MemStateMachine

WRITES = 3000


async def _cluster():
    router = LocalRouter()
    rafts = {}
    for i in (1, 2, 3):
        rafts[i] = await Raft.start(i, Config(), router.factory(i), MemLogStore(), MemStateMachine())
        router.add(rafts[i])
    await rafts[1].initialize({i: Node(f"local:{i}") for i in rafts})
    await rafts[1].wait(5.0).state(ServerState.LEADER)
    return rafts


async def _leader(rafts):
    """The node that leads once a write has gone through it."""
    for _ in range(100):
        for r in rafts.values():
            if r.is_leader():
                try:
                    await r.client_write(b"probe")
                    return r
                except ForwardToLeader:
                    pass
        await asyncio.sleep(0.05)
    raise AssertionError("no leader within 5 s")


def _garbage_of(run, body) -> int:
    """Objects in reference cycles that `body` left behind (found by one full collection)."""
    async def measured():
        rafts = await _cluster()
        await body(rafts[1], 100)               # warm up: first-use allocations are not per write
        gc.collect()
        gc.disable()
        try:
            # A long collection blocks the loop: check-quorum may then have deposed the leader.
            leader = await _leader(rafts)
            await body(leader, WRITES)
            found = gc.collect()
        finally:
            gc.enable()
        for r in rafts.values():
            await r.shutdown()
        return found
    return run(measured())


def test_single_writes_make_no_cycles(run):
    async def body(leader, n):
        async def client(k):
            for i in range(k):
                resp = await leader.client_write(b"%d" % i)
                assert resp.log_id.index > 0
        await asyncio.gather(*(client(n // 10) for _ in range(10)))
    assert _garbage_of(run, body) == 0


def test_batched_writes_and_reads_make_no_cycles(run):
    async def body(leader, n):
        for i in range(n // 100):
            resps = await leader.client_write_many([b"x"] * 100)
            assert len(resps) == 100 and resps.last_log_id.index > 0
            await leader.ensure_linearizable()
    assert _garbage_of(run, body) == 0
