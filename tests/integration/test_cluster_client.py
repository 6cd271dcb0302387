"""What a client may rely on (issue 7): a write's error says whether it may have been applied,
leaders are named only when known, and a bad argument fails its call, not the node."""
import asyncio
import logging

import pytest

from cluster_support import FAST, WAIT, Cluster, kv, node
from openraft_fast import Config, ConfigError, Fatal, ForwardToLeader, OutcomeUnknown, RaftError, ServerState
from openraft_fast.errors import Unreachable
from openraft_fast.network import LocalRouter
from openraft_fast.storage import BLANK, MEMBERSHIP, NORMAL, LogSlice, Snapshot, SnapshotMeta, StateMachine

# Elections only when a test asks for one, and a lease long enough for a loaded machine.
MANUAL = FAST.replace(heartbeat_interval=0.05, election_timeout_min=0.5, election_timeout_max=1.0,
                      enable_elect=False)


class AppendCutRouter(LocalRouter):
    """A LocalRouter that can cut appends (and heartbeats) on a link but let votes through."""

    def __init__(self) -> None:
        super().__init__()
        self.no_append = set()

    def _send(self, src, dst, kind, msg, loop):
        if (src, dst) in self.no_append and kind in ("append", "heartbeat"):
            fut = loop.create_future()
            fut.set_exception(Unreachable(f"{src} -> {dst}: appends cut"))
            return fut
        return super()._send(src, dst, kind, msg, loop)


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


def test_forward_to_leader_has_a_reason_code(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            f = next(i for i in (1, 2, 3) if i != lead)
            with pytest.raises(ForwardToLeader) as ei:
                await c.rafts[f].client_write(kv("x", 1))
            assert ei.value.reason == ForwardToLeader.NOT_LEADER and ei.value.leader_id == lead
            # Refused: nothing was appended, so the retry at the leader applies it once.
            r = await c.write(lead, "x", 1)
            assert r.log_id.index == c.rafts[lead].metrics.last_log_index
    run(body())


# ---------------------------------------------------------------------------- bad arguments
BAD_CALLS = {
    "add_learner node as str": lambda r: r.add_learner(4, "host:port"),
    "add_learner id as str": lambda r: r.add_learner("4", node(4)),
    "add_learner blocking as str": lambda r: r.add_learner(4, node(4), blocking="no"),
    "change_membership str": lambda r: r.change_membership("123"),
    "change_membership str ids": lambda r: r.change_membership({"1", "2"}),
    "change_membership retain int": lambda r: r.change_membership({1, 2, 3}, retain=1),
    "purge_log str": lambda r: r.trigger.purge_log("10"),
    "purge_log negative": lambda r: r.trigger.purge_log(-1),
    "transfer_leader list": lambda r: r.trigger.transfer_leader([2]),
    "transfer_leader negative": lambda r: r.trigger.transfer_leader(-2),
}


def test_bad_arguments_fail_the_call_and_the_node_keeps_serving(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            raft = c.rafts[lead]
            for name, call in BAD_CALLS.items():
                with pytest.raises((TypeError, ValueError)) as ei:
                    await asyncio.wait_for(call(raft), WAIT)
                assert isinstance(ei.value, RaftError), f"{name}: {ei.value!r} is not a RaftError"
                assert raft.metrics.state == ServerState.LEADER, f"{name} stopped the node"
            with pytest.raises(ValueError):
                await raft.trigger.purge_log(-1)
            r = await c.write(lead, "after", 1)
            await c.wait_applied(r.log_id.index)
            assert raft.metrics.membership.voter_ids == {1, 2, 3}
    run(body())


def test_an_exception_in_a_call_fails_that_call_only(run):
    """An error raised while the engine handles a call goes to that caller; the node serves on."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            raft = c.rafts[lead]

            def bad():
                raise KeyError("boom")

            with pytest.raises(KeyError):
                await asyncio.wait_for(raft._core.call(bad), WAIT)
            assert raft.metrics.state == ServerState.LEADER
            await c.write(lead, "after", 1)
    run(body())


def test_fatal_fails_the_call_being_handled(run):
    """A broken invariant stops the node; the call that hit it fails too, it does not hang."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            raft = c.rafts[lead]

            def broken():
                raise AssertionError("invariant broken")

            with pytest.raises(Fatal) as ei:
                await asyncio.wait_for(raft._core.call(broken), WAIT)
            assert "invariant broken" in str(ei.value)
            assert raft.metrics.state == ServerState.SHUTDOWN
            c.stopped.add(lead)
    run(body())


# ---------------------------------------------------------------------------- payloads
def test_payloads_must_be_bytes_like(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            raft = c.rafts[lead]
            last = raft.metrics.last_log_index
            for bad in ("s", 42, None, {"k": 1}, [b"a"]):
                with pytest.raises(TypeError):
                    await raft.client_write(bad)
            for bad in (b"abc", bytearray(b"abc"), "abc", [b"a", "b"], [None], 7):
                with pytest.raises(TypeError):
                    await raft.client_write_many(bad)
            await asyncio.sleep(0.05)
            assert raft.metrics.last_log_index == last, "a refused payload was appended"
            r1 = await raft.client_write(bytearray(kv("a", 1)))
            r2 = await raft.client_write(memoryview(kv("b", 2)))
            rs = await raft.client_write_many((kv("c", 3), kv("d", 4)))
            assert r1.log_id.index == last + 1 and r2.log_id.index == last + 2
            assert rs.last_log_id.index == last + 4
            await c.wait_applied(last + 4)
            c.assert_same_data(expect={"a": 1, "b": 2, "c": 3, "d": 4})
    run(body())


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize("field,value", [
    ("heartbeat_interval", float("nan")), ("election_timeout_min", float("nan")),
    ("election_timeout_max", float("inf")), ("install_snapshot_timeout", float("inf")),
    ("backoff", float("nan")), ("leader_lease", float("nan")), ("max_clock_drift", float("nan")),
    ("enable_pre_vote", "no"), ("enable_heartbeat", 1), ("enable_elect", "yes"), ("enable_tick", None),
])
def test_config_refuses_non_finite_numbers_and_non_bool_flags(field, value):
    with pytest.raises(ConfigError) as ei:
        Config(**{field: value})
    assert ei.value.field == field


# ---------------------------------------------------------------------------- leader naming
def test_leader_that_removed_itself_does_not_name_itself(run):
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4))
            keep = {1, 2, 3, 4} - {lead}
            await c.rafts[lead].change_membership(keep)
            new = await c.wait_leader(keep)
            old = c.rafts[lead]
            m = await old.wait(WAIT).metrics(lambda m: m.state != ServerState.LEADER, "stepped down")
            assert m.state == ServerState.NOT_MEMBER, m
            assert old.current_leader() in (None, new)
            assert m.current_leader in (None, new)
            with pytest.raises(ForwardToLeader) as ei:
                await old.client_write(kv("x", 1))
            assert ei.value.leader_id in (None, new)
            assert ei.value.reason == ForwardToLeader.NOT_LEADER
            await c.write(new, "x", 1)
    run(body())


# ---------------------------------------------------------------------------- new leader
def test_membership_call_right_after_election_waits_for_the_initial_membership(run):
    """The initial membership commits with the new leader's first entry: a membership call
    made before that waits for it instead of failing with "in_progress"."""
    async def body():
        async with Cluster() as c:
            await c.start([1, 2, 3], init=False)
            await c.start_node(4)
            c.router.set_delay(0.02)        # the first commit takes a round trip
            await c.rafts[1].initialize({i: node(i) for i in (1, 2, 3)})
            m = await c.rafts[1].wait(WAIT).state(ServerState.LEADER)
            assert m.committed is None or m.committed.index < m.last_log_index
            resp = await c.rafts[1].add_learner(4, node(4))
            assert 4 in resp.membership.learner_ids
            resp = await c.rafts[1].change_membership({1, 2, 3, 4})
            assert resp.membership.voter_ids == {1, 2, 3, 4}
    run(body())


# ---------------------------------------------------------------------------- public names
class CountingStateMachine(StateMachine):
    """A user's state machine written from public names only: counts application entries."""

    def __init__(self) -> None:
        self.count = 0
        self.applied = None
        self.membership = None          # (log id, Membership) of the last membership entry
        self.snapshot = None

    async def applied_state(self):
        return self.applied, self.membership

    async def apply(self, entries: LogSlice):
        out = []
        for i, (payload, kind) in enumerate(zip(entries.payloads, entries.kinds)):
            if kind == NORMAL:
                assert isinstance(payload, bytes)
                self.count += 1
            elif kind == MEMBERSHIP:
                self.membership = (entries.log_id_at(entries.start + i), payload)
            else:
                assert kind == BLANK and payload is None
            out.append(self.count if kind == NORMAL else None)
        self.applied = entries.last_log_id
        return out

    async def build_snapshot(self) -> Snapshot:
        mid, m = self.membership
        self.snapshot = Snapshot(SnapshotMeta(self.applied, mid, m, f"count-{self.count}"), str(self.count).encode())
        return self.snapshot

    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self.count = int(data)
        self.applied = meta.last_log_id
        self.membership = (meta.membership_log_id, meta.membership)
        self.snapshot = Snapshot(meta, data)

    async def get_current_snapshot(self):
        return self.snapshot


def test_user_state_machine_from_public_names(run):
    async def body():
        async with Cluster(FAST.replace(snapshot_policy="never", max_in_snapshot_log_to_keep=0)) as c:
            ids = (1, 2, 3)
            for i in ids:
                await c.start_node(i, sm=CountingStateMachine())
            await c.rafts[1].initialize({i: node(i) for i in ids})
            lead = await c.wait_leader(ids)
            for i in range(5):
                r = await c.write(lead, "k", i)
            assert r.data == 5
            L = c.rafts[lead]
            await L.trigger.snapshot()
            await L.wait(WAIT).snapshot(r.log_id.index)
            await L.trigger.purge_log(r.log_id.index)
            await L.wait(WAIT).purged(r.log_id.index)
            await c.start_node(4, sm=CountingStateMachine())
            await L.add_learner(4, node(4))        # it gets the snapshot, then the log
            await c.wait_applied(r.log_id.index, [4])
            assert c.sm(4).count == 5
    run(body())


# ---------------------------------------------------------------------------- logging
def test_events_are_logged_at_info_with_the_node_id(run, caplog):
    async def body():
        async with Cluster(FAST.replace(snapshot_policy="never")) as c:
            lead = await c.start([1, 2, 3])
            await c.start_node(4)
            await c.rafts[lead].add_learner(4, node(4))
            await c.write(lead, "x", 1)
            await c.rafts[lead].trigger.snapshot()
            await c.rafts[lead].wait(WAIT).metrics(lambda m: m.snapshot is not None, "snapshot")
            to = next(i for i in (1, 2, 3) if i != lead)
            await c.rafts[lead].trigger.transfer_leader(to)
            await c.wait_leader([1, 2, 3], exclude=[lead])
            await c.rafts[lead].wait(WAIT).metrics(lambda m: m.state != ServerState.LEADER, "stepped down")
        return lead, to

    with caplog.at_level(logging.INFO, logger="openraft_fast"):
        lead, to = run(body())
    lines = [r.getMessage() for r in caplog.records if r.name == "openraft_fast" and r.levelno == logging.INFO]
    assert lines and all(line.startswith("node ") for line in lines), lines

    def logged(text, i):
        return any(line.startswith(f"node {i}:") and text in line for line in lines)

    assert logged("leader in term", lead), lines                  # the election
    assert logged(f"leader {lead}", 4), lines                      # the learner learns of it
    assert logged("membership", lead) and logged("membership", 4), lines
    assert logged("snapshot up to", lead), lines
    assert logged(f"transferring leadership to {to}", lead), lines
    assert logged("shut down", lead), lines


def test_vote_messages_are_logged_at_debug(run, caplog):
    async def body():
        async with Cluster() as c:
            return await c.start([1, 2, 3])

    with caplog.at_level(logging.DEBUG, logger="openraft_fast"):
        lead = run(body())
    lines = [r.getMessage() for r in caplog.records if r.name == "openraft_fast" and r.levelno == logging.DEBUG]
    assert any(line.startswith(f"node {lead}: vote response from ") for line in lines), lines


# ---------------------------------------------------------------------------- leadership lost
async def depose_without_appends(c, router, old, new, others):
    """Elect `new` (which holds all of `old`'s log) with the votes of `old` and `others`: `old`
    grants its vote and steps down, but `new`'s appends never reach it, so `old` hears nothing
    more of the cluster's log."""
    last = c.rafts[old].metrics.last_log_index
    await c.rafts[new].wait(WAIT).metrics(lambda m: m.last_log_index >= last, "new leader holds the old log")
    for dst in (new, *others):
        router.cut(old, dst)
    router.no_append.add((new, old))
    await elect(c, new)
    await c.rafts[old].wait(WAIT).metrics(lambda m: m.state != ServerState.LEADER, "old leader stepped down")


def test_pending_write_of_deposed_leader_fails_outcome_unknown_after_a_bound(run):
    """A leader steps down with pending writes and never hears from the new leader again (its
    appends are cut): the writes must not wait forever. They fail with
    OutcomeUnknown("leadership_lost") after the bound (2 x election_timeout_max), not
    ForwardToLeader: the new leader held the entries and commits them."""
    A, B, C = 1, 2, 3

    async def body():
        async with Cluster(MANUAL) as c:
            c.router = router = AppendCutRouter()
            await c.start([A, B, C], init=False)
            await c.rafts[A].initialize({i: node(i) for i in (A, B, C)})
            await elect(c, A)
            r = await c.write(A, "before", 0)
            await c.wait_applied(r.log_id.index)

            router.cut(A, C)
            router.cut(B, A)                # B holds the writes, A does not hear that it does
            single = c.rafts[A].client_write(kv("x", 1))
            batch = c.rafts[A].client_write_many([kv("y", 1), kv("z", 1)])
            await c.rafts[B].wait(WAIT).metrics(lambda m: m.last_log_index >= r.log_id.index + 3, "on B")
            assert not single.done() and not batch.done()
            router.cut(A, B)
            router.no_append.add((B, A))
            await asyncio.sleep(0.1)        # responses in flight are lost
            router.restore(B, A)            # B's vote request will reach A, its appends will not

            await depose_without_appends(c, router, A, B, [C])
            bound = 2 * MANUAL.election_timeout_max
            for fut in (single, batch):
                with pytest.raises(OutcomeUnknown) as ei:
                    await asyncio.wait_for(fut, bound + WAIT)
                assert ei.value.reason == OutcomeUnknown.LEADERSHIP_LOST
                assert not isinstance(ei.value, ForwardToLeader)
            # The outcome was indeed unknown to A: the cluster committed the writes.
            await c.write(B, "after", 1)
            await c.wait_applied(r.log_id.index + 4, [B, C])
            assert c.sm(B).data["x"] == 1 and c.sm(B).data["z"] == 1
    run(body())


def test_pending_write_of_deposed_leader_resolves_if_applied_in_time(run):
    """A deposed leader's pending write that the new leader commits (it got the entry) and
    that then reaches the old leader within the bound resolves normally."""
    A, B, C = 1, 2, 3

    async def body():
        async with Cluster(MANUAL) as c:
            c.router = router = AppendCutRouter()
            await c.start([A, B, C], init=False)
            await c.rafts[A].initialize({i: node(i) for i in (A, B, C)})
            await elect(c, A)
            r = await c.write(A, "before", 0)
            await c.wait_applied(r.log_id.index)

            router.cut(A, C)
            fut = c.rafts[A].client_write(kv("x", 1))
            x_index = r.log_id.index + 1
            await c.rafts[B].wait(WAIT).metrics(lambda m: m.last_log_index >= x_index, "X on B")
            router.cut(A, B)
            await elect(c, B)                       # B holds X and commits it with its blank
            resp = await asyncio.wait_for(fut, WAIT)
            assert resp.log_id.index == x_index
            assert c.sm(A).data["x"] == 1
    run(body())


def test_add_learner_blocking_that_loses_leadership_is_not_forward_to_leader(run):
    """The learner entry was appended (and applied): losing leadership while the learner
    catches up is OutcomeUnknown("leadership_lost"), never ForwardToLeader ("not applied")."""
    A, B, C, L = 1, 2, 3, 4

    async def body():
        async with Cluster(MANUAL.replace(replication_lag_threshold=1)) as c:
            c.router = router = AppendCutRouter()
            await c.start([A, B, C], init=False)
            await c.rafts[A].initialize({i: node(i) for i in (A, B, C)})
            await elect(c, A)
            for k in range(5):
                r = await c.write(A, f"k{k}", k)
            await c.wait_applied(r.log_id.index)
            # Node 4 is not running: it never catches up.
            call = asyncio.ensure_future(c.rafts[A].add_learner(L, node(L), blocking=True))
            await c.rafts[A].wait(WAIT).metrics(
                lambda m: m.membership is not None and L in m.membership.learner_ids and
                m.last_applied is not None and m.last_applied.index >= m.membership_log_id.index, "learner applied")
            await asyncio.sleep(0.05)
            assert not call.done()
            await depose_without_appends(c, router, A, B, [C])
            with pytest.raises(OutcomeUnknown) as ei:
                await asyncio.wait_for(call, WAIT)
            assert ei.value.reason == OutcomeUnknown.LEADERSHIP_LOST
            assert not isinstance(ei.value, ForwardToLeader)
    run(body())


def test_pending_writes_of_an_isolated_leader_fail_within_a_bound(run):
    """A leader cut off from every follower and never told of a newer leader: check-quorum
    makes it step down after election_timeout_max without quorum acks, and its pending writes
    then fail with OutcomeUnknown("leadership_lost") within the orphan bound, instead of
    waiting for the partition to heal. The node names no leader meanwhile."""
    async def body():
        async with Cluster() as c:
            lead = await c.start([1, 2, 3])
            await c.write(lead, "before", 0)
            c.router.isolate(lead)
            pending = [c.rafts[lead].client_write(kv("x", i)) for i in range(3)]
            bound = c.config.election_timeout_max + 2 * c.config.election_timeout_max
            for fut in pending:
                with pytest.raises(OutcomeUnknown) as ei:
                    await asyncio.wait_for(fut, bound + WAIT)
                assert ei.value.reason == OutcomeUnknown.LEADERSHIP_LOST
            assert not c.rafts[lead].is_leader()
            assert c.rafts[lead].current_leader() is None
            # The others went on: a new leader, and the isolated node rejoins once healed.
            new = await c.wait_leader(ids=[i for i in (1, 2, 3) if i != lead])
            r = await c.write(new, "after", 1)
            c.router.heal()
            await c.wait_applied(r.log_id.index, ids=[1, 2, 3])
            assert c.sm(lead).data["after"] == 1
    run(body())
