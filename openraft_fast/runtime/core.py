"""RaftCore: one node's runtime, wired from its concerns.

The hot path is compiled (`openraft_fast._core`): the event pump and command executor
(`executor`), client writes (`writes`), the apply queue (`applier`), outgoing RPCs (`peers`)
and RPCs received (`inbox`). The cold parts are here, in Python: reads on the leader
(`read_batch`) and on any node (`reads`), sending snapshots (`snapshot_send`), calls into the
engine, waiters, metrics and stopping. The public handle (`openraft_fast.raft.Raft`) calls the
compiled entry points directly: `write`, `write_many`, `receive` and `post` are the executor's
bound methods, with no Python frame in between.
"""
from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Callable, List, NamedTuple, Optional, Tuple

from openraft_fast._aio import fail
from openraft_fast._core.engine import Engine
from openraft_fast._core.executor import Executor
from openraft_fast._core.types import LogId
from openraft_fast._core.writes import fail_sinks
from openraft_fast.errors import Fatal, OutcomeUnknown, RaftError, Stopped, StorageError
from openraft_fast.events import (LeaderChanged, MembershipChanged, NodeStopped, RaftEvent, RoleChanged,
                                  SnapshotBuilt, SnapshotInstalled)
from openraft_fast.metrics import RaftMetrics, ServerState
from openraft_fast.runtime.event_stream import EventStream, Subscription
from openraft_fast.runtime.read_batch import ReadBatch
from openraft_fast.runtime.forward import ForwardBatcher, forward_write, serve_forward
from openraft_fast.runtime.reads import serve_read_index
from openraft_fast.runtime.snapshot_send import send_snapshot

log = logging.getLogger("openraft_fast")


class NodeView(NamedTuple):
    """What the INFO log and the events report of a node's state, compared after each pump."""
    role: ServerState
    leader_id: Optional[int]
    term: int
    membership_log_id: Optional[LogId]
    snapshot: Optional[LogId]


class RaftCore:
    def __init__(self, node_id: int, config, network_factory, log_store, state_machine, engine: Engine) -> None:
        self.loop = asyncio.get_running_loop()
        self.node_id = node_id
        self.config = config
        self.network_factory = network_factory
        self.log_store = log_store
        self.sm = state_machine
        self.engine = engine
        ex = self.executor = Executor(self.loop, engine, log_store, state_machine, network_factory,
                                      2 * config.election_timeout_max)
        self.peers = ex.peers
        self.applier = ex.applier
        self.reads = ReadBatch(self.loop, ex.post, engine.ensure_linearizable, lambda: ex.stopped)
        ex.on_fatal = self.fatal
        ex.on_reply = self.reads.reply
        ex.on_send_snapshot = self._send_snapshot
        ex.after_pump_hook = self._after_pump
        ex.inbox.serve_read_index = partial(serve_read_index, self)
        ex.inbox.serve_forward = partial(serve_forward, self)
        ex.forward_write = partial(forward_write, self)
        self.forwarder = ForwardBatcher(self)
        # The hot entry points, bound to the compiled executor.
        self.post = ex.post
        self.write = ex.write
        self.write_many = ex.write_many
        self.write_into = ex.write_into
        self.receive = ex.inbox.receive
        self.wait_applied = ex.applier.wait_applied
        self.read = self.reads.read
        # What the INFO log and the events last reported (kept up to date while either is on).
        self.reported: Optional[NodeView] = None
        self.event_stream = EventStream(self.loop, self._watch)
        self.watched = False            # someone iterates events(): the executor's flag, mirrored
        self.applier.snapshot_hook = self._snapshot_done
        # A log store that fails in the background (a group fsync) stops the node at once.
        set_error_handler = getattr(log_store, "set_error_handler", None)
        if set_error_handler is not None:
            set_error_handler(self._log_store_failed)

    @property
    def stopped(self) -> Optional[BaseException]:
        return self.executor.stopped

    @property
    def applied_index(self) -> int:
        return self.applier.applied_index

    @property
    def clients(self) -> dict:
        return self.peers.clients

    @property
    def orphan_bound(self) -> float:
        return self.executor.writes.orphan_bound

    @property
    def metric_waiters(self) -> List[Tuple[Callable, asyncio.Future]]:
        return self.executor.metric_waiters

    @property
    def core_waiters(self) -> List[Tuple[Callable, asyncio.Future]]:
        return self.executor.core_waiters

    def _client(self, target):
        return self.peers.client(target)

    def _send_snapshot(self, target, req) -> None:
        self.loop.create_task(send_snapshot(self, target, req))

    def _log_store_failed(self, exc: BaseException) -> None:
        self.fatal(StorageError(f"log store failed: {exc!r}"), exc)

    # ------------------------------------------------------------------ after each pump
    def _after_pump(self) -> None:
        """Called by the executor after a pump while someone waits on the node's state, and
        after a pump that changed what the INFO log or the events report while either is on."""
        if self.watched or log.isEnabledFor(logging.INFO):
            self._report_changes()
        if self.core_waiters:
            _check_waiters(self.core_waiters, lambda pred: pred(self))
        if self.metric_waiters:
            m = self.metrics()
            _check_waiters(self.metric_waiters, lambda pred: pred(m))

    def _view(self) -> NodeView:
        e = self.engine
        return NodeView(self._role(), e.leader_id, e.vote.leader_id.term, e.membership_log_id,
                        None if e.snapshot is None else e.snapshot.last_log_id)

    def _report_changes(self) -> None:
        """What changed since the last report: INFO lines for role or leader (elections),
        membership and snapshot; events for role, leader and membership (snapshot events come
        from the state machine's calls: _snapshot_done)."""
        now = self._view()
        old = self.reported
        if now == old:
            return
        self.reported = now
        e = self.engine
        role_changed = old is None or now.role != old.role
        # A new leadership: another leader, or the same node elected again in a later term.
        leader_changed = old is None or now.leader_id != old.leader_id or (
            now.leader_id is not None and now.term != old.term)
        membership_changed = now.membership_log_id != (None if old is None else old.membership_log_id)
        if log.isEnabledFor(logging.INFO):
            if role_changed or leader_changed:
                log.info("node %s: %s in term %s, leader %s", self.node_id, now.role.name.lower(), now.term,
                         now.leader_id)
            if membership_changed:
                log.info("node %s: membership %r at %s", self.node_id, e.membership, now.membership_log_id)
            if now.snapshot != (None if old is None else old.snapshot):
                log.info("node %s: snapshot up to %s", self.node_id, now.snapshot)
        if self.watched:
            t = self.loop.time()
            publish = self.event_stream.publish
            if role_changed:
                publish(RoleChanged(now.role, now.term, t))
            if leader_changed:
                publish(LeaderChanged(now.leader_id, now.term, t))
            if membership_changed:
                publish(MembershipChanged(e.membership, now.membership_log_id, t))

    # ------------------------------------------------------------------ events
    def subscribe(self, backlog: int) -> Subscription:
        """A new events() subscriber. It starts with the state now: RoleChanged, LeaderChanged
        and, once the node has one, MembershipChanged."""
        if self.stopped is not None:
            return self.event_stream.subscribe(())
        # The reports go on from the state this subscriber starts with (while nobody listened
        # and the INFO log was off, they were not kept up to date).
        now = self.reported = self._view()
        t = self.loop.time()
        first: List[RaftEvent] = [RoleChanged(now.role, now.term, t), LeaderChanged(now.leader_id, now.term, t)]
        if self.engine.membership is not None:
            first.append(MembershipChanged(self.engine.membership, now.membership_log_id, t))
        return self.event_stream.subscribe(first, backlog)

    def _watch(self, flag: bool) -> None:
        self.watched = self.executor.watched = flag

    def _snapshot_done(self, installed: bool, meta) -> None:
        if self.watched:
            event = SnapshotInstalled if installed else SnapshotBuilt
            self.event_stream.publish(event(meta, self.loop.time()))

    # ------------------------------------------------------------------ calls into the engine
    def call(self, fn: Callable, *args) -> asyncio.Future:
        """Run fn(*args) as an event; the future gets its result or its RaftError. `fn`
        returns (result, commands)."""
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
            return fut
        self.post(self._call_event, fn, args, fut)
        return fut

    def _call_event(self, fn, args, fut):
        try:
            result, cmds = fn(*args)
        except AssertionError:
            raise       # a broken invariant: the engine's state cannot be trusted, stop the node
        except Exception as exc:
            # A refused or bad call fails that call; the engine checks before it changes state.
            if not isinstance(exc, RaftError):
                log.warning("node %s: call %r failed: %r", self.node_id, fn, exc)
            fail(fut, exc)
            return ()
        if not fut.done():
            fut.set_result(result)
        return cmds

    def wait_core(self, pred: Callable[["RaftCore"], bool]) -> asyncio.Future:
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
        elif pred(self):
            fut.set_result(None)
        else:
            self.core_waiters.append((pred, fut))
        return fut

    # ------------------------------------------------------------------ metrics
    def metrics(self) -> RaftMetrics:
        e = self.engine
        replication = None
        if e.is_leader() and e.tracker is not None:
            replication = {}
            for target, p in e.tracker.progress.items():
                replication[target] = e.log.log_id_at(p.matched) if p.matched > 0 else None
        last = e.last_log_id
        return RaftMetrics(
            id=self.node_id,
            state=ServerState.SHUTDOWN if self.stopped is not None else self._role(),
            current_term=e.vote.leader_id.term,
            vote=e.vote,
            current_leader=e.leader_id,
            last_log_index=e.log.last_index,
            last_log_id=last,
            committed=e.committed,
            last_applied=e.applied,
            snapshot=None if e.snapshot is None else e.snapshot.last_log_id,
            purged=e.log.purged,
            membership=e.membership,
            membership_log_id=e.membership_log_id,
            replication=replication,
            running_state=self.stopped if not isinstance(self.stopped, Stopped) else None,
        )

    def _role(self) -> ServerState:
        """This node's role while it runs (metrics.state, but SHUTDOWN)."""
        e = self.engine
        if e.membership is None or self.node_id not in e.membership.node_ids():
            return ServerState.NOT_MEMBER
        return ServerState(e.state)

    # ------------------------------------------------------------------ stop
    def fatal(self, err: BaseException, cause: Optional[BaseException] = None) -> None:
        ex = self.executor
        if ex.stopped is not None:
            return
        if isinstance(err, Stopped):
            log.info("node %s: shut down", self.node_id)
        else:
            log.error("node %s stops: %s", self.node_id, err, exc_info=cause)
            if not isinstance(err, Fatal):
                wrapped = Fatal(str(err))
                wrapped.__cause__ = err
                err = wrapped
        ex.stopped = err
        ex.cancel_timer()
        # Appended but not applied here: another node may hold the entries and commit them.
        unknown = OutcomeUnknown(OutcomeUnknown.STOPPED, str(err))
        unknown.__cause__ = err
        ex.writes.fail_all(err, unknown)
        self.reads.fail_all(err)
        self.applier.fail_all(err)
        ex.inbox.fail_all(err)
        for _, fut in self.core_waiters + self.metric_waiters:
            fail(fut, err)
        self.core_waiters.clear()
        self.metric_waiters.clear()
        for fn, args in ex.events:
            if fn == self._call_event:
                fail(args[2], err)
            elif fn == ex._do_write:
                fail_sinks(args[1], err)
        ex.events.clear()
        self.peers.close_all()
        self.event_stream.stop(NodeStopped(None if isinstance(err, Stopped) else err, self.loop.time()))


def _check_waiters(waiters, test) -> None:
    for pred, fut in list(waiters):
        if fut.done():
            waiters.remove((pred, fut))
        elif test(pred):
            waiters.remove((pred, fut))
            fut.set_result(None)
