"""Apply errors: a state machine refuses one entry by returning an ApplyError for it (its
writer gets the error, every replica the same outcome, the nodes go on, a replay refuses it
again); a state machine that raises stops the node (fatal), and says so everywhere."""
import asyncio
import re

import msgpack
import pytest

from cluster_support import WAIT, Cluster, events_until, kv, node
from openraft_fast import ApplyError, Fatal, NodeStopped, OutcomeUnknown, ServerState, StorageError
from openraft_fast._core.types import NORMAL
from openraft_fast.storage import MemStateMachine

IDS = (1, 2, 3)


class RefusingStateMachine(MemStateMachine):
    """MemStateMachine that refuses to set the key "bad" (an ApplyError for that entry, the
    state unchanged) and raises on the key "boom" (a bug: fatal). `refused`: the indexes
    refused, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = []

    async def apply(self, entries):
        out = []
        for i, (payload, kind) in enumerate(zip(entries.payloads, entries.kinds)):
            cmd = msgpack.unpackb(payload) if kind == NORMAL else None
            if cmd is None:
                out.append(None)
            elif cmd[0] == "bad":
                self.refused.append(entries.start + i)
                out.append(ApplyError(f"value {cmd[1]!r} refused", "BadKey", cmd[1]))
            elif cmd[0] == "boom":
                raise KeyError("boom")
            else:
                out.append(self.data.get(cmd[0]))
                self.data[cmd[0]] = cmd[1]
        self.record_applied(entries)
        return out


async def start(c: Cluster, sms) -> int:
    for i in IDS:
        await c.start_node(i, sm=sms[i])
    await c.rafts[1].initialize({i: node(i) for i in IDS})
    return await c.wait_leader(IDS)


def assert_running(c: Cluster) -> None:
    for i in IDS:
        m = c.rafts[i].metrics
        assert m.state != ServerState.SHUTDOWN and m.running_state is None, m


def test_a_refused_entry_fails_its_writer_only_the_same_on_every_replica_and_after_a_replay(run):
    async def body():
        async with Cluster() as c:
            sms = {i: RefusingStateMachine() for i in IDS}
            lead = await start(c, sms)
            await c.write(lead, "a", 1)
            with pytest.raises(ApplyError) as refused:
                await c.write(lead, "bad", 7)
            assert refused.value == ApplyError("value 7 refused", "BadKey", 7)
            # The cluster goes on taking writes.
            assert (await c.write(lead, "b", 2)).data is None
            assert (await c.write(lead, "a", 3)).data == 1
            # In a batch, the refused entry's response is its ApplyError; the batch resolves.
            batch = await c.rafts[lead].client_write_many([kv("c", 4), kv("bad", 8), kv("d", 5)])
            assert batch.data == [None, ApplyError("value 8 refused", "BadKey", 8), None]
            assert batch[1].data == ApplyError("value 8 refused", "BadKey", 8)
            last = batch.last_log_id.index
            await c.wait_applied(last)
            expect = {"a": 3, "b": 2, "c": 4, "d": 5}
            c.assert_same_data(expect=expect)
            # Every replica refused the same two entries and applied the same log.
            assert len(sms[lead].refused) == 2 and sms[lead].refused[1] == batch.log_id(1).index
            assert all(sms[i].refused == sms[lead].refused for i in IDS)
            assert len({c.rafts[i].metrics.last_applied for i in IDS}) == 1
            assert_running(c)

            # Restart every node from its log with an empty state machine: the log replays,
            # the refused entries are refused again, and no node stops.
            for i in IDS:
                await c.stop(i)
            replayed = {i: RefusingStateMachine() for i in IDS}
            for i in IDS:
                c.router.heal(i)
                await c.start_node(i, c.log(i), replayed[i])
            lead = await c.wait_leader(IDS)
            await c.wait_applied(last)
            assert all(replayed[i].refused == sms[1].refused for i in IDS)
            c.assert_same_data(expect=expect)
            assert_running(c)
            # ... and they still serve: a bad write fails its writer, the next one succeeds.
            with pytest.raises(ApplyError):
                await c.write(lead, "bad", 9)
            r = await c.write(lead, "e", 6)
            await c.wait_applied(r.log_id.index)
            c.assert_same_data(expect={**expect, "e": 6})
            assert all(len(replayed[i].refused) == 3 for i in IDS)
            assert_running(c)
    run(body())


def test_a_state_machine_that_raises_stops_the_node(run):
    async def body():
        async with Cluster() as c:
            sms = {i: RefusingStateMachine() for i in IDS}
            lead = await start(c, sms)
            L = c.rafts[lead]
            r = await c.write(lead, "a", 1)
            await c.wait_applied(r.log_id.index)
            events = L.events()
            first = r.log_id.index + 1
            # Two writes in one batch: "boom" raises, so apply of both entries fails.
            boom = L.client_write(kv("boom", 1))
            after = L.client_write(kv("b", 2))
            seen = await events_until(events, lambda e: isinstance(e, NodeStopped))
            m = L.metrics
            assert m.state == ServerState.SHUTDOWN
            cause = m.running_state
            assert isinstance(cause, Fatal) and seen[-1].cause is cause
            assert isinstance(cause.__cause__, StorageError) and isinstance(cause.__cause__.__cause__, KeyError)
            text = str(cause.__cause__)
            span = re.search(r"state machine apply of entries \[(\d+), (\d+)\) raised KeyError\('boom'\): fatal, "
                             r"the node stops; return an ApplyError for an entry to refuse it instead", text)
            assert span is not None, text
            assert int(span.group(1)) == first and first < int(span.group(2)) <= first + 2, text
            # The stream ends after NodeStopped.
            with pytest.raises(StopAsyncIteration):
                await events.__anext__()
            # The pending writers fail, typed: their entries were appended, their fate is not known here.
            for fut in (boom, after):
                with pytest.raises(OutcomeUnknown) as unknown:
                    await fut
                assert unknown.value.reason == OutcomeUnknown.STOPPED and unknown.value.__cause__ is cause
            # Later calls fail with the cause at once.
            with pytest.raises(Fatal) as later:
                await L.client_write(kv("c", 3))
            assert later.value is cause
            # apply is deterministic: a replica that learns the entry is committed fails on it
            # too. The other two elect a leader, which commits it and stops; the last one may
            # or may not have learned it (then, alone, it can commit nothing more).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while sum(c.rafts[i].metrics.state == ServerState.SHUTDOWN for i in IDS) < 2:
                assert loop.time() < deadline, {i: c.rafts[i].metrics for i in IDS}
                await asyncio.sleep(0.01)
            for i in IDS:
                m = c.rafts[i].metrics
                if m.state == ServerState.SHUTDOWN:
                    assert f"apply of entries [{first}, " in str(m.running_state), m.running_state
                else:
                    assert m.last_applied.index < first and sms[i].data == {"a": 1}, m
    run(body())
