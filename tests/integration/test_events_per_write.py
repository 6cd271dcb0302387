"""What one write costs the runtime in engine events and commands, over three in-process
nodes with a single writer (issue 21: fewer events per write). A store durable on append
(MemLogStore) lets the engine take each append as flushed in the event that asked for it."""
import random

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, NoopStateMachine

WRITES = 300


class _FlushedLater(MemLogStore):
    """A MemLogStore that does not say it is durable on append: every append costs an
    on_log_flushed event, as a disk store's does."""
    durable_on_append = False


async def _cost_per_write(store_class):
    router = LocalRouter()
    # Heartbeats far apart: the counts are the writes' own.
    config = Config(heartbeat_interval=5.0, election_timeout_min=15.0, election_timeout_max=20.0)
    rafts = {}
    for i in (1, 2, 3):
        rafts[i] = await Raft.start(i, config, router.factory(i), store_class(), NoopStateMachine(),
                                    rng=random.Random(i))
        router.add(rafts[i])
    try:
        await rafts[1].initialize({i: Node(f"local:{i}") for i in rafts}, elect=True)
        await rafts[1].wait(5.0).state(ServerState.LEADER)
        for _ in range(20):
            await rafts[1].client_write(b"warm")
        executors = [r._core.executor for r in rafts.values()]
        events0 = sum(x.events_run for x in executors)
        commands0 = sum(x.commands_run for x in executors)
        for _ in range(WRITES):
            await rafts[1].client_write(b"x")
        for r in rafts.values():        # the followers apply the last write with the next message
            await r.wait(5.0).applied_index(rafts[1].metrics.last_applied.index - 1)
        events = (sum(x.events_run for x in executors) - events0) / WRITES
        commands = (sum(x.commands_run for x in executors) - commands0) / WRITES
        return events, commands
    finally:
        for r in rafts.values():
            await r.shutdown(transfer=False)


def test_a_write_costs_eight_engine_events_with_a_store_durable_on_append(run):
    events, commands = run(_cost_per_write(MemLogStore))
    # Leader: the write, two append responses, the apply; each follower: the append (flushed
    # in it), the apply.
    assert 7.9 <= events <= 8.1, events
    # Leader: AppendLog, 2 Send, SaveCommitted, Apply; each follower: AppendLog, Respond,
    # SaveCommitted, Apply.
    assert 12.9 <= commands <= 13.1, commands


def test_a_write_costs_three_flush_events_more_when_the_store_flushes_later(run):
    events, commands = run(_cost_per_write(_FlushedLater))
    assert 10.9 <= events <= 11.1, events
    assert 12.9 <= commands <= 13.1, commands
