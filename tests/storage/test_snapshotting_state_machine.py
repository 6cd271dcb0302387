"""SnapshottingStateMachine: a subclass writes only apply_command / serialize / restore; the base
tracks the applied log id and memberships, keeps snapshots on disk and reloads them, installs
durably, passes an ApplyError through, and carries a cluster across a full restart."""
import asyncio

import pytest

import openraft_fast as orf
from openraft_fast import ApplyError
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL, Membership, Node
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, SnapshottingStateMachine, SnapshotStore
from openraft_fast.testing.conformance import StateMachineSuite, leader, log_id, make_slice


class Counter(SnapshottingStateMachine):
    """A replicated counter: a payload is a signed decimal to add; the response is the new
    total. A change that would take the total below zero is refused (ApplyError)."""

    def __init__(self, snapshot_dir=None):
        self.total = 0
        super().__init__(snapshot_dir)

    def apply_command(self, index, payload):
        n = int(payload)
        if self.total + n < 0:
            return ApplyError(f"{self.total} + {n} is below zero", kind="Negative")
        self.total += n
        return self.total

    def serialize(self):
        return str(self.total).encode()

    def restore(self, data):
        self.total = int(data)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def normal(start, *payloads, lid=None):
    lid = lid or leader(1, 1)
    return make_slice(start, [(lid, NORMAL, p) for p in payloads])


def test_apply_snapshot_to_disk_and_reload(tmp_path):
    async def main():
        d = tmp_path / "snap"
        sm = Counter(d)
        assert await sm.applied_state() == (None, None) and await sm.get_current_snapshot() is None
        assert await sm.apply(normal(1, b"5", b"7", b"-2")) == [5, 12, 10]
        assert await sm.applied_state() == (log_id(1, 1, 3), None)
        built = await sm.build_snapshot()
        assert built.meta.last_log_id == log_id(1, 1, 3) and built.data == b"10"
        await sm.apply(normal(4, b"100"))                 # after the snapshot: not in it
        assert sm.total == 110

        again = Counter(d)                                # a restart: the snapshot, not what followed
        assert again.total == 10
        assert await again.applied_state() == (log_id(1, 1, 3), None)
        cur = await again.get_current_snapshot()
        assert cur.meta == built.meta and bytes(cur.data) == b"10"
        # The snapshot ids go on after a reopen: a new build is told apart from the loaded one.
        assert await again.apply(normal(4, b"1")) == [11]
        assert (await again.build_snapshot()).meta.snapshot_id not in (built.meta.snapshot_id, "")
        assert SnapshotStore(d).load().data == b"11"
    run(main())


def test_install_replaces_the_state_durably(tmp_path):
    async def main():
        leader_sm = Counter()
        m = Membership({1, 2}, {1: Node("a"), 2: Node("b", {"http": "h"})})
        await leader_sm.apply(make_slice(1, [(leader(2, 1), MEMBERSHIP, m), (leader(2, 1), NORMAL, b"40"),
                                             (leader(2, 1), NORMAL, b"2")]))
        snap = await leader_sm.build_snapshot()

        follower = Counter(tmp_path / "f")
        await follower.apply(normal(1, b"9", b"9", b"9", b"9"))    # its own, to be replaced
        assert await follower.install_snapshot(snap.meta, snap.data) is None
        assert follower.total == 42
        assert await follower.applied_state() == (log_id(2, 1, 3), (log_id(2, 1, 1), m))
        assert (await follower.get_current_snapshot()).meta == snap.meta

        reopened = Counter(tmp_path / "f")                 # saved before install returned
        assert reopened.total == 42
        assert await reopened.applied_state() == (log_id(2, 1, 3), (log_id(2, 1, 1), m))
        assert (await reopened.applied_state())[1][1].get_node(2).data == {"http": "h"}
    run(main())


def test_memberships_and_blanks_are_recorded_and_answered_none(tmp_path):
    async def main():
        sm = Counter(tmp_path)
        m1, m2 = Membership({1, 2, 3}), Membership([{1, 2, 3}, {3, 4}])
        got = await sm.apply(make_slice(1, [(leader(0, None), MEMBERSHIP, m1), (leader(1, 1), BLANK, None),
                                            (leader(1, 1), NORMAL, b"3"), (leader(1, 1), MEMBERSHIP, m2),
                                            (leader(1, 1), NORMAL, b"4")]))
        assert got == [None, None, 3, None, 7]
        assert await sm.applied_state() == (log_id(1, 1, 5), (log_id(1, 1, 4), m2))
        assert sm.last_membership == (log_id(1, 1, 4), m2)
        snap = await sm.build_snapshot()
        assert (snap.meta.membership_log_id, snap.meta.membership) == (log_id(1, 1, 4), m2)
        # A later batch without a membership entry keeps the last one.
        await sm.apply(make_slice(6, [(leader(2, 3), BLANK, None)]))
        assert await sm.applied_state() == (log_id(2, 3, 6), (log_id(1, 1, 4), m2))
        assert await Counter(tmp_path).applied_state() == (log_id(1, 1, 5), (log_id(1, 1, 4), m2))
    run(main())


def test_an_apply_error_refuses_only_its_entry():
    async def main():
        sm = Counter()
        got = await sm.apply(normal(1, b"3", b"-5", b"-1"))
        assert got[0] == 3 and got[2] == 2
        assert got[1] == ApplyError("3 + -5 is below zero", kind="Negative")
        assert sm.total == 2                                # the refused entry changed nothing...
        assert await sm.applied_state() == (log_id(1, 1, 3), None)    # ...and is applied
    run(main())


class BatchCounter(Counter):
    """Overrides apply (one pass over the batch) and serialize_async, as a large state would."""

    async def apply(self, entries):
        out = []
        for kind, payload in zip(entries.kinds, entries.payloads):
            if kind == NORMAL:
                self.total += int(payload)
                out.append(self.total)
            else:
                out.append(None)
        self.record_applied(entries)
        return out

    async def serialize_async(self):
        data = self.serialize()                             # the state is fixed before the await
        await asyncio.sleep(0)
        return data


def test_an_apply_override_records_through_the_helper():
    async def main():
        sm = BatchCounter()
        m = Membership({1})
        got = await sm.apply(make_slice(1, [(leader(1, 1), MEMBERSHIP, m), (leader(1, 1), NORMAL, b"2"),
                                            (leader(1, 1), NORMAL, b"3")]))
        assert got == [None, 2, 5]
        assert await sm.applied_state() == (log_id(1, 1, 3), (log_id(1, 1, 1), m))
        snap = await sm.build_snapshot()
        assert (snap.meta.last_log_id, snap.data) == (log_id(1, 1, 3), b"5")
    run(main())


def test_a_subclass_without_its_part_fails_loudly():
    class Incomplete(SnapshottingStateMachine):
        def restore(self, data):
            pass

    async def main():
        sm = Incomplete()
        with pytest.raises(NotImplementedError, match="apply_command"):
            await sm.apply(normal(1, b"1"))
        with pytest.raises(NotImplementedError, match="serialize"):
            await sm.build_snapshot()
    run(main())
    with pytest.raises(TypeError):
        SnapshottingStateMachine()          # restore is abstract


class TestCounterConformance(StateMachineSuite):
    def make_state_machine(self):
        return Counter()

    def make_payload(self, i):
        return str(i % 7 - 2).encode()


class TestDurableCounterConformance(TestCounterConformance):
    def make_state_machine(self):
        return Counter(self.new_path())


CFG = orf.Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3,
                 snapshot_policy=20, max_in_snapshot_log_to_keep=0)


async def _start(router, i, log_store, sm):
    raft = await orf.Raft.start(i, CFG, router.factory(i), log_store, sm)
    router.add(raft)
    return raft


async def _leader(rafts, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        leaders = [r for r in rafts.values() if r.is_leader()]
        if len(leaders) == 1:
            return leaders[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no single leader")


def test_a_cluster_replicates_and_restarts_from_its_snapshots(tmp_path):
    """Three nodes, each a Counter with a snapshot directory and a MemLogStore. Every node
    snapshots and purges its log; then all stop, and all start again from a new Counter over
    the same directory (and the same log store): the state is back before any new write,
    and the cluster goes on."""
    async def main():
        ids = (1, 2, 3)
        logs = {i: MemLogStore() for i in ids}
        router = LocalRouter()
        sms = {i: Counter(tmp_path / f"n{i}") for i in ids}
        rafts = {i: await _start(router, i, logs[i], sms[i]) for i in ids}
        await rafts[1].initialize({i: Node(f"local:{i}") for i in ids})
        lead = await _leader(rafts)
        resps = [await lead.client_write(b"2") for _ in range(25)]
        for r in rafts.values():
            m = await r.wait(10).snapshot(20)
            await r.wait(10).purged(m.snapshot.index)       # the log behind the snapshot is gone
        # Five more, not enough for another snapshot: a restart must replay them from the log.
        resps += [await lead.client_write(b"2") for _ in range(5)]
        assert [r.data for r in resps] == list(range(2, 62, 2))
        last = resps[-1].log_id.index
        snaps = {}
        for i, r in rafts.items():
            await r.wait(10).applied_index(last)
            snaps[i] = await sms[i].get_current_snapshot()
            assert snaps[i].meta.last_log_id.index < last
        for r in rafts.values():
            await r.shutdown(transfer=False)

        router = LocalRouter()
        sms = {i: Counter(tmp_path / f"n{i}") for i in ids}
        for i in ids:
            assert (await sms[i].applied_state())[0] == snaps[i].meta.last_log_id
            assert sms[i].total == int(snaps[i].data) and 0 < sms[i].total < 60
        rafts = {i: await _start(router, i, logs[i], sms[i]) for i in ids}
        for i, r in rafts.items():
            assert r.metrics.membership is not None        # initialized: no initialize() again
            await r.wait(10).applied_index(last)            # the log after the snapshot, replayed
            assert sms[i].total == 60
        lead = await _leader(rafts)
        resp = await lead.client_write(b"1")
        for i, r in rafts.items():
            await r.wait(10).applied_index(resp.log_id.index)
            assert sms[i].total == 61
        for r in rafts.values():
            await r.shutdown(transfer=False)
    run(main())
