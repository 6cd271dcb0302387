"""Raft: the public asyncio handle of one node (a thin class over the runtime core)."""
from __future__ import annotations

import asyncio
import enum
import math
import logging
import random
from typing import Any, Iterable, Mapping, Optional, Union

from openraft_fast.runtime import reads as _reads
from openraft_fast._core.engine import Engine, PersistedState
from openraft_fast._core.types import MEMBERSHIP, LogId, Membership, Node
from openraft_fast.config import Config
from openraft_fast.errors import (ForwardToLeader, InvalidArgument, InvalidArgumentType, OutcomeUnknown, RaftError, StorageError,
                                  Stopped, Timeout)
from openraft_fast.metrics import RaftMetrics, ServerState, Wait
from openraft_fast.network.base import NetworkFactory
from openraft_fast._core.writes import as_payloads
from openraft_fast.runtime import BatchWriteResponses, ClientWriteResponse, RaftCore
from openraft_fast.runtime.event_stream import DEFAULT_BACKLOG, Subscription
from openraft_fast.storage.base import LogStore, StateMachine


_log = logging.getLogger("openraft_fast")
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _non_negative_int(name: str, value, what: str = "node id") -> int:
    """A node id or log index argument: a non-negative int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(f"{name} must be an int {what}, got {type(value).__name__} {value!r}")
    if value < 0:
        raise InvalidArgument(f"{name} must be >= 0, got {value!r}")
    return value


_node_id = _non_negative_int


def _iterable(name: str, values, of: str) -> Iterable:
    """A collection argument: any iterable but a str or a bytes-like (whose items are chars or ints)."""
    if isinstance(values, (str,) + _BYTES_LIKE) or not isinstance(values, Iterable):
        raise InvalidArgumentType(f"{name} must be an iterable of {of}, got {type(values).__name__}")
    return values


def _node_ids(name: str, values) -> frozenset:
    return frozenset(_node_id(f"{name} item", v) for v in _iterable(name, values, "int node ids"))


def _node(name: str, value) -> Node:
    if not isinstance(value, Node):
        raise InvalidArgumentType(f"{name} must be a Node, got {type(value).__name__} {value!r}")
    return value


def _optional_timeout(name: str, value) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidArgument(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentType(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


class ReadPolicy(enum.IntFlag):
    """READ_INDEX: confirm leadership with a quorum round. LEASE_READ: trust the leader lease,
    no round. Both: the lease while it holds, a round otherwise."""
    READ_INDEX = 1
    LEASE_READ = 2


class Trigger:
    """Ask the node to do something now instead of when its timers or policies would
    (`raft.trigger`). Each method returns once the node has taken the request, not once the
    action is done: wait for its effect with `raft.wait()` (e.g. `.snapshot(index)`,
    `.state(ServerState.LEADER)`). A node that has stopped raises its stop error."""

    def __init__(self, core: RaftCore) -> None:
        self._core = core

    def _run(self, fn, *args):
        return self._core.call(lambda: (None, fn(*args)))

    async def elect(self) -> None:
        """Stand for election now. Ignored while this node is inside a leader's lease: it
        promised that leader not to help elect another (its own candidacy included) until the
        lease passes; use transfer_leader on the leader to hand over at once."""
        await self._run(self._core.engine.elect)

    async def heartbeat(self) -> None:
        """On a leader, send every follower a heartbeat now (a no-op elsewhere)."""
        await self._run(self._core.engine.trigger_heartbeat)

    async def snapshot(self) -> None:
        """Build a snapshot of what is applied now, unless one is being built or the current
        one already covers it (see Config.snapshot_policy for the automatic ones). The
        build is queued behind the entries already committed; `raft.wait().snapshot(index)`
        waits for it."""
        await self._run(self._core.engine.trigger_snapshot)

    async def purge_log(self, upto: int) -> None:
        """Purge the log up to index `upto`, but never past the current snapshot or what is
        applied, and on a leader not past what a live replication stream still sends (the
        rest is purged later). Raises InvalidArgumentType/InvalidArgument for a bad index."""
        _non_negative_int("upto", upto, "log index")
        await self._run(self._core.engine.purge_log, upto)

    async def transfer_leader(self, to: int) -> None:
        """On the leader, hand leadership to voter `to` (this node itself: nothing to do).
        Writes are refused meanwhile (ForwardToLeader "leader_transferring"); once `to`
        holds the whole log it is told to stand at once. If it has not taken over within
        Config.election_timeout_max, this leader takes writes again.
        `raft.wait().current_leader(to)` waits for the change. Raises ForwardToLeader on a
        node that does not lead, RaftError when `to` is not a voter."""
        _node_id("to", to)
        await self._run(self._core.engine.transfer_leader, to)
        _log.info("node %s: transferring leadership to %s", self._core.node_id, to)


class Raft:
    """One Raft node. Create with `await Raft.start(...)`."""

    def __init__(self, core: RaftCore) -> None:
        self._core = core
        self._trigger = Trigger(core)
        # The hot entry points are the compiled runtime's own (no Python frame between): the
        # in-process router's, and client_write (the method below documents it; the executor
        # checks the payload with writes.as_payload).
        self._receive = core.receive
        self.client_write = core.write  # type: ignore[method-assign,assignment]

    @classmethod
    async def start(cls, node_id: int, config: Config, network_factory: NetworkFactory, log_store: LogStore,
                    state_machine: StateMachine, *, rng: Optional[random.Random] = None) -> "Raft":
        _node_id("node_id", node_id)
        if not isinstance(config, Config):
            raise InvalidArgumentType(f"config must be a Config, got {type(config).__name__}")
        loop = asyncio.get_running_loop()
        try:
            vote = await log_store.read_vote()
            committed = await log_store.read_committed()
            log = await log_store.read_log()
            applied, applied_membership = await state_machine.applied_state()
            snap = await state_machine.get_current_snapshot()
        except Exception as exc:
            raise StorageError(f"node {node_id}: reading the stores failed: {exc!r}") from exc
        state = PersistedState(vote, log, committed, None if snap is None else snap.meta, applied, applied_membership)
        engine = Engine(node_id, config, state, rng or random.Random(), loop.time(),
                        sync_log=bool(getattr(log_store, "durable_on_append", False)))
        core = RaftCore(node_id, config, network_factory, log_store, state_machine, engine)
        core.post(engine.startup)
        return cls(core)

    @property
    def node_id(self) -> int:
        return self._core.node_id

    @property
    def trigger(self) -> Trigger:
        """Ask this node to act now instead of on its timers and policies:
        `await raft.trigger.elect()`, `.heartbeat()`, `.snapshot()`, `.purge_log(upto)`,
        `.transfer_leader(to)` (see Trigger)."""
        return self._trigger

    @property
    def config(self) -> Config:
        return self._core.config

    # ------------------------------------------------------------------ cluster setup
    async def initialize(self, nodes: Union[Mapping[int, Node], Iterable[int]], elect: bool = True) -> None:
        """Initialize a new cluster with these voters (`{node id: Node}`, or node ids alone,
        each with `Node()`): this node writes the first membership entry and stands for
        election (unless Config.enable_elect is False): at once, or with `elect=False` when
        a randomized election timeout runs out (pre-vote first). Use `elect=False` when every
        node is initialized at once: nodes that all stand together can elect a leader and
        then depose it, and the first writes are lost with it (OutcomeUnknown).

        Only a pristine node can be initialized: one that has never voted, holds no log entry
        and no snapshot, and is one of `nodes`. Anything else raises InitializeError: a node
        already initialized (also after a restart from its saved state: do not call it
        again), one that has heard from an initialized cluster (it voted or got entries), or
        one not in `nodes`. Call it once, on one node; calling it on several pristine nodes
        with the same `nodes` (Node values included) is harmless (they write the same entry),
        but those that already heard from the others raise InitializeError. On a restart: start every node, and
        initialize only when the cluster is new, e.g. on one seed node when
        `raft.metrics.membership is None` (see docs/embedding.md)."""
        if isinstance(nodes, Mapping):
            nodes = {_node_id("node id", i): _node(f"nodes[{i!r}]", n) for i, n in nodes.items()}
            m = Membership(set(nodes), nodes)
        else:
            m = Membership(set(_node_ids("nodes", nodes)))
        if not isinstance(elect, bool):
            raise InvalidArgumentType(f"elect must be a bool, got {elect!r}")
        engine = self._core.engine
        await self._core.call(lambda: (None, engine.initialize(m, elect)))

    async def add_learner(self, node_id: int, node: Node, blocking: bool = True,
                          timeout: Optional[float] = 30.0) -> ClientWriteResponse:
        """Add a non-voting member. With `blocking`, return once it has caught up: it has
        acknowledged an append and lags the leader by at most
        `Config.replication_lag_threshold` entries (not necessarily none). If it has not
        within `timeout` seconds (None: no bound), raise Timeout: the learner was added (its
        membership entry is applied) but has not caught up, so it is not ready to be made a
        voter (is it running, and reachable at `node.addr`?).

        A call on a leader elected a moment ago first waits, bounded, until the membership a
        previous leader appended is committed. If this node loses leadership while the
        learner catches up, it raises OutcomeUnknown("leadership_lost"): the learner was
        added (`detail` says so), whether it caught up is unknown. It is never
        ForwardToLeader, which means nothing was appended."""
        _node_id("node_id", node_id)
        _node("node", node)
        _flag("blocking", blocking)
        timeout = _optional_timeout("timeout", timeout)
        core = self._core
        engine = core.engine
        await self._previous_leaders_membership_committed()
        idx = await core.call(self._membership_step, engine.add_learner, node_id, node)
        if idx is not None:
            await self._own_entry_applied(idx)
        if blocking:
            try:
                await asyncio.wait_for(
                    core.wait_core(lambda c: not c.engine.is_leader() or c.engine.is_caught_up(node_id)), timeout)
            except asyncio.TimeoutError:
                lag = engine.replication_lag(node_id)
                raise Timeout(f"learner {node_id} was added but has not caught up within {timeout:g}s "
                              f"({'no append acknowledged' if not engine.has_acked(node_id) else f'{lag} entries behind'}"
                              f"; is it running and reachable at {node.addr}?)") from None
            if not engine.is_leader():
                raise OutcomeUnknown(OutcomeUnknown.LEADERSHIP_LOST,
                                     f"the learner was added (membership entry {idx} applied); leadership was lost "
                                     f"while it caught up (leader now {engine.leader_id})")
        return self._membership_response(idx)

    async def change_membership(self, members: Iterable[int], retain: bool = False,
                                force: bool = False) -> ClientWriteResponse:
        """Make `members` the voters: through the joint config to the uniform one. With
        `retain`, removed voters stay as learners.

        Refused with ChangeMembershipError("not_enough_healthy_voters") when fewer than a
        quorum of `members` are healthy: the leader itself, and the voters and learners it
        heard an acknowledgement from within `Config.election_timeout_max` (the message names
        the others). Such a change would leave the cluster unable to commit. `force=True`
        skips that check (etcd's --strict-reconfig-check, off)."""
        core = self._core
        engine = core.engine
        goal = _node_ids("members", members)
        _flag("retain", retain)
        _flag("force", force)
        last = None
        await self._previous_leaders_membership_committed()
        while True:
            idx = await core.call(self._membership_step, engine.change_membership, goal, retain, None, force)
            if idx is None:
                break
            last = idx
            await self._own_entry_applied(idx)
            m = engine.membership
            if m is not None and not m.is_joint and m.voter_ids == goal:
                break
        return self._membership_response(last)

    async def remove_node(self, node_id: int, force: bool = False) -> ClientWriteResponse:
        """Take `node_id` out of the cluster and return once that is applied here: a voter
        leaves the voters (through the joint config, as change_membership without retain; the
        healthy-quorum check applies unless `force`), a learner leaves the learners. A node in
        no membership: nothing to do (the current membership's response).

        On the leader removing itself it first hands leadership over (as shutdown does) and
        then raises ForwardToLeader(LEADER_TRANSFERRING) naming the new leader: nothing was
        appended, call it there (the KV service's client follows the redirect)."""
        _node_id("node_id", node_id)
        _flag("force", force)
        core = self._core
        engine = core.engine
        m = engine.membership
        if m is None or node_id not in m.node_ids():
            return self._membership_response(None)
        if node_id == self.node_id and engine.is_leader():
            await self._hand_off()
            raise ForwardToLeader(engine.leader_id, engine.leader_node(), ForwardToLeader.LEADER_TRANSFERRING,
                                  f"node {node_id} handed leadership over before its removal; remove it there")
        if m.is_voter(node_id):
            goal = set(m.configs[len(m.configs) - 1]) - {node_id}
            return await self.change_membership(goal, retain=False, force=force)
        await self._previous_leaders_membership_committed()
        idx = await core.call(self._membership_step, engine.remove_learner, node_id)
        if idx is not None:
            await self._own_entry_applied(idx)
        return self._membership_response(idx)

    async def _previous_leaders_membership_committed(self) -> None:
        """On a new leader, wait (at most two election timeouts) until it has committed an
        entry of its own: then every membership a previous leader appended is committed, and
        only a change this leader has under way refuses the next one ("in_progress")."""
        def settled(core) -> bool:
            e = core.engine
            c = e.committed
            return not e.is_leader() or (c is not None and c.leader_id == e.last_log_id.leader_id)

        core = self._core
        if settled(core):
            return
        try:
            await asyncio.wait_for(core.wait_core(settled), 2 * self.config.election_timeout_max)
        except asyncio.TimeoutError:
            pass        # the call goes on and the engine refuses it ("in_progress")

    async def _own_entry_applied(self, idx: int) -> None:
        """Wait until the entry this leader appended at `idx` is applied. Like a client write,
        never forever: if it is overwritten, OutcomeUnknown("truncated"); if this node stops
        leading and does not learn the outcome within 2 x election_timeout_max,
        OutcomeUnknown("leadership_lost")."""
        core = self._core
        engine = core.engine
        lid = engine.log.log_id_at(idx)

        def gone(e) -> bool:
            log = e.log
            return log.last_index < idx or (idx >= log.first_index and log.log_id_at(idx) != lid)

        def settled(c) -> bool:
            return c.applied_index >= idx or gone(c.engine)

        await core.wait_core(lambda c: settled(c) or not c.engine.is_leader())
        if not settled(core):
            bound = self._core.orphan_bound
            try:
                await asyncio.wait_for(core.wait_core(settled), bound)
            except asyncio.TimeoutError:
                raise OutcomeUnknown(OutcomeUnknown.LEADERSHIP_LOST,
                                     f"membership entry {lid}: this node stopped leading and did not learn "
                                     f"its outcome within {bound}s") from None
        if gone(engine):
            raise OutcomeUnknown(OutcomeUnknown.TRUNCATED, f"membership entry {lid} was overwritten by another leader")

    def _membership_step(self, engine_call, *args):
        """Run one membership call in the engine: (index of the entry it appended or None, commands)."""
        log = self._core.engine.log
        before = log.last_index
        cmds = engine_call(*args)
        return (log.last_index if log.last_index > before else None), cmds

    def _membership_response(self, idx):
        """The response for the membership entry at `idx` (None: nothing appended, the current one)."""
        engine = self._core.engine
        log = engine.log
        if idx is None or idx < log.first_index or idx > log.last_index or log.kind_at(idx) != MEMBERSHIP:
            return ClientWriteResponse(engine.membership_log_id, None, engine.membership)
        return ClientWriteResponse(log.log_id_at(idx), None, log.payload_at(idx))

    # ------------------------------------------------------------------ client requests
    def client_write(self, data: Any, forward: bool = False,
                     timeout: Optional[float] = None) -> "asyncio.Future[ClientWriteResponse]":
        """Replicate `data` (bytes, bytearray or memoryview, kept as bytes) as one entry;
        resolves once it is applied on the leader, with its log id and the state machine's
        answer. Raises TypeError (InvalidArgumentType) for any other payload, before anything
        is appended. If the state machine refuses the entry (its `apply` answers an
        ApplyError for it), the write fails with that ApplyError; the entry is applied (a
        no-op) on every replica and the node goes on.

        On a node that does not lead it fails with ForwardToLeader, unless `forward=True`:
        then the write goes to the leader over the Raft transport and the call returns the
        leader's answer. A refusal (no leader known, the leader unreachable, or it refused:
        nothing was appended) is retried inside the call, at the next leader, for up to
        `timeout` seconds (None: 10 x Config.election_timeout_max), then raised. A write the
        leader took but whose answer did not come back fails with OutcomeUnknown
        ("no_response"). A forwarded answer crosses the network as msgpack: bytes, str,
        numbers, lists (tuples arrive as lists), dicts and None.

        It never waits forever: if this node stops leading after the entry was appended, the
        write still resolves if the entry is applied here, fails with
        OutcomeUnknown("truncated") if it is overwritten, and otherwise fails with
        OutcomeUnknown("leadership_lost") once 2 x Config.election_timeout_max has passed
        since the node stopped leading (the entry may still be committed by another leader)."""
        return self._core.write(data, forward, timeout)   # (bound per instance to the executor's write: see __init__)

    def client_write_into(self, data: Any, sink: Any) -> None:
        """client_write for a server answering many clients: instead of returning a future,
        the write resolves `sink`, an object with a Future's `done()`, `set_result(response)`
        and `set_exception(exc)`, the same way a future would be (same responses, same
        errors). They are called inside the node's loop callbacks, so they must be quick and
        must not raise. This saves the future, its callback handle and a task per write."""
        self._core.write_into(data, sink)

    def client_write_many(self, datas: Iterable, forward: bool = False,
                          timeout: Optional[float] = None) -> "asyncio.Future[BatchWriteResponses]":
        """Replicate many entries in one submission; resolves with one response per entry.
        `datas` is an iterable of payloads, each bytes-like; a bytes-like `datas` is refused.
        An entry the state machine refused has its ApplyError instance as its response data.
        Losing leadership is handled as for client_write (OutcomeUnknown after the bound);
        `forward` and `timeout` too (the whole batch goes to the leader at once)."""
        # A list is not copied: its items are taken (extended into the batch) before this returns.
        payloads = datas if type(datas) is list else list(_iterable("client_write_many's argument", datas, "payloads"))
        if forward:
            if not payloads:
                return self._core.write_many([])
            return self._core.executor.forward_write(as_payloads(payloads), True, timeout)
        return self._core.write_many(as_payloads(payloads))

    async def ensure_linearizable(self, policy: ReadPolicy = ReadPolicy.READ_INDEX, *,
                                  timeout: Optional[float] = None) -> LogId:
        """Return once this node's state machine reflects every write committed before the
        call; the returned log id is the read point. Works on any node: the leader confirms the
        read point itself (LEASE_READ: its lease while it holds; READ_INDEX: a quorum round); a
        follower or learner asks the leader for it and waits until it has applied that far
        (etcd's follower ReadIndex). Raises ForwardToLeader (leader_id None) when no leader is
        known, QuorumNotEnough / LeaseExpired when the leader cannot confirm, Timeout after
        `timeout` seconds (on a follower, by default 10 x Config.election_timeout_max)."""
        if not isinstance(policy, int) or isinstance(policy, bool) or not 1 <= int(policy) <= 3:
            raise InvalidArgumentType(f"policy must be a ReadPolicy, got {policy!r}")
        return await _reads.ensure_linearizable(self._core, int(policy), _optional_timeout("timeout", timeout))

    # ------------------------------------------------------------------ state
    @property
    def metrics(self) -> RaftMetrics:
        return self._core.metrics()

    def wait(self, timeout: Optional[float] = 5.0) -> Wait:
        """Wait for a condition on this node's metrics, at most `timeout` seconds (None: with
        no bound). Each method of the returned Wait (`state`, `current_leader`, `log`,
        `applied_index`, `members`, `snapshot`, `purged`, or `metrics(predicate)`) returns
        the RaftMetrics once the condition holds, raises Timeout (naming the last metrics)
        when it has not held in time, and raises the node's stop error if it stops::

            m = await raft.wait(timeout=2.0).state(ServerState.LEADER)
            m = await raft.wait(None).applied_index(resp.log_id.index)    # as long as it takes
            m = await raft.wait().metrics(lambda m: m.current_leader is not None, "a leader")
        """
        return Wait(self._core, timeout)

    def events(self, *, backlog: int = DEFAULT_BACKLOG) -> Subscription:
        """This node's state changes, as an async iterator (`openraft_fast.events`)::

            async for event in raft.events():
                if isinstance(event, LeaderChanged): ...

        Each call is a new subscription. It starts with the state now (RoleChanged,
        LeaderChanged, and MembershipChanged once the node has a membership), then yields,
        in order, each change as the node makes it: RoleChanged, LeaderChanged,
        MembershipChanged, SnapshotBuilt, SnapshotInstalled; it ends (StopAsyncIteration)
        after NodeStopped, whose `cause` is None for a shutdown and the error otherwise (also
        at once, alone, on a node that has stopped). The stream reports transitions as this
        node saw them after each step: a change undone within one step is not reported.

        The one style of notification: an async iterator, no callbacks. Nothing of the
        subscriber's runs inside the node, so a slow or failing subscriber cannot stall or
        break it, and the subscriber awaits, cancels and stops reading the usual way.
        Leaving the `async for` (break, return, an exception) unsubscribes once the iterator
        is dropped; `aclose()` (or `contextlib.aclosing`) does at once. A subscriber that
        falls more than `backlog` events behind loses the oldest and reads EventsLost(count)
        in their place. With no subscriber, the node looks for nothing."""
        if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 1:
            raise InvalidArgument(f"backlog must be an int >= 1, got {backlog!r}")
        return self._core.subscribe(backlog)

    def health(self, max_lag: int = 10000) -> dict:
        """Is this node fit to serve, by what it knows now (no round trip)? A dict:
        `ok`, `id`, `state` (the ServerState name, lower case), `leader`, `applied` (last
        applied index), `lag` (entries it knows are committed and has not applied), and, when
        not ok, `reason`:
          - "stopped": the node has stopped;
          - "not_member": it is in no membership (not initialized, not added, or removed);
          - "no_leader": a leader that has no quorum acked within its lease, or a follower or
            learner that has not heard from a leader within the lease;
          - "lagging": `lag` exceeds `max_lag`.
        What a load balancer's health check wants (the KV service's GET /v1/health)."""
        _non_negative_int("max_lag", max_lag, "entry count")
        core = self._core
        m = core.metrics()
        applied = None if m.last_applied is None else m.last_applied.index
        lag = max(0, (0 if m.committed is None else m.committed.index) - (applied or 0))
        out = {"ok": True, "id": m.id, "state": m.state.name.lower(), "leader": m.current_leader,
               "applied": applied, "lag": lag}
        reason = None
        if m.state == ServerState.SHUTDOWN:
            reason = "stopped"
        elif m.state == ServerState.NOT_MEMBER:
            reason = "not_member"
        elif m.state == ServerState.LEADER:
            until = core.engine.lease_valid_until
            if until is None or until <= core.loop.time():
                reason = "no_leader"
        elif m.current_leader is None:
            reason = "no_leader"
        if reason is None and lag > max_lag:
            reason = "lagging"
        if reason is not None:
            out["ok"] = False
            out["reason"] = reason
        return out

    def current_leader(self) -> Optional[int]:
        return self._core.engine.leader_id

    def is_leader(self) -> bool:
        return self._core.stopped is None and self._core.engine.is_leader()

    async def shutdown(self, transfer: bool = True) -> None:
        """Stop the node: every pending call fails with Stopped.

        On a leader, with `transfer` (the default), first hand leadership to the most
        up-to-date voter it heard from within `Config.election_timeout_max`, and wait (at
        most that long) until a new leader is known, so writers wait a round trip instead of
        an election timeout. Writes arriving meanwhile are refused with ForwardToLeader
        (LEADER_TRANSFERRING). Keep the node's network server open until this returns: the
        new leader's vote request must reach it."""
        _flag("transfer", transfer)
        core = self._core
        if transfer and core.stopped is None and core.engine.is_leader():
            await self._hand_off()
        core.fatal(Stopped())
        await asyncio.sleep(0)

    async def _hand_off(self) -> None:
        core = self._core
        engine = core.engine
        to = engine.hand_off_target()
        if to is None:
            _log.info("node %s: stopping as leader with no healthy voter to hand over to", core.node_id)
            return
        me = core.node_id
        # A target that stopped a moment ago still looks healthy: if its TimeoutNow cannot be
        # delivered, stop at once instead of waiting out the bound.
        unreachable = core.loop.create_future()
        peers = core.peers

        def timeout_now_failed(target, exc) -> None:
            if target == to and not unreachable.done():
                unreachable.set_result(exc)

        peers.on_timeout_now_failed = timeout_now_failed
        taken_over = core.wait_core(lambda c: c.engine.leader_id not in (None, me))
        try:
            try:
                await core.call(lambda: (None, engine.transfer_leader(to)))
            except RaftError as exc:           # lost leadership meanwhile: nothing to hand over
                _log.info("node %s: no hand-off to %s: %s", me, to, exc)
                return
            await asyncio.wait((taken_over, unreachable), timeout=self.config.election_timeout_max,
                               return_when=asyncio.FIRST_COMPLETED)
            if taken_over.done() and not taken_over.cancelled() and taken_over.exception() is None:
                _log.info("node %s: handed leadership to %s", me, engine.leader_id)
            elif unreachable.done():
                _log.info("node %s: no hand-off: %s cannot be reached (%r); stopping", me, to, unreachable.result())
            else:
                _log.warning("node %s: hand-off to %s did not finish within %ss; stopping anyway", me, to,
                             self.config.election_timeout_max)
        finally:
            peers.on_timeout_now_failed = None
            taken_over.cancel()
            unreachable.cancel()

    # ------------------------------------------------------------------ receiving side
    def _rpc(self, kind: str, msg) -> "asyncio.Future":
        fut = self._core.loop.create_future()     # the node's loop (asking for the running one costs a getpid)
        self._core.receive(kind, msg.vote.leader_id.node_id, msg, fut)
        return fut

    def append_entries(self, req):
        """Handle an AppendRequest from the leader; resolves with the AppendResponse."""
        return self._rpc("heartbeat" if req.entries is None else "append", req)

    def vote(self, req):
        return self._rpc("vote", req)

    def install_snapshot(self, req):
        return self._rpc("snapshot", req)

    def timeout_now(self, msg):
        return self._rpc("timeout_now", msg)

    def forward(self, req):
        """Handle a follower's ForwardRequest (this node should lead): its client writes, as
        this node's own; resolves with the ForwardResponse."""
        fut = self._core.loop.create_future()
        self._core.receive("forward", None, req, fut)
        return fut

    def peer_connected(self, node_id: int) -> None:
        """A network server accepted a connection from `node_id`: it is up, so this node's
        client to it stops backing off (NetworkFactory.peer_up)."""
        self._core.network_factory.peer_up(node_id)

    def read_index(self, req):
        """Handle a follower's ReadIndexRequest (this node should lead); resolves with the
        ReadIndexResponse."""
        fut = self._core.loop.create_future()
        self._core.receive("read_index", None, req, fut)
        return fut
