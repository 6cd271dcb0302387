"""The runtime: feeds events to the engine and executes its commands on asyncio.

Events (client requests, messages, completions, timer expiry) go through one queue. `_pump`
takes them in order, calls the engine, and executes the commands it returns in order. Commands
that complete without waiting (appending to the log store, sending, replying) run inline; one
that must wait (saving the vote, truncating, purging, installing a snapshot) blocks the pump
until it is durable, so the order the engine chose is the order things happen. Applying runs
in its own queue, so replication and acks go on while the state machine works. No task is
created per message or per request; the shipped networks hand back futures.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from functools import partial
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from openraft_fast._aio import start_eager
from openraft_fast._core import commands as C
from openraft_fast._core.engine import Engine
from openraft_fast._core.messages import (AppendRequest, AppendResponse, InstallSnapshotRequest, TimeoutNow, VoteRequest, VoteResponse)
from openraft_fast._core.types import LogId
from openraft_fast.errors import Fatal, OutcomeUnknown, RaftError, StorageError, Stopped
from openraft_fast.metrics import RaftMetrics, ServerState
from openraft_fast.reads import serve_read_index

log = logging.getLogger("openraft_fast")

_SAVE_VOTE = C.SAVE_VOTE
_APPEND_LOG = C.APPEND_LOG
_TRUNCATE_LOG = C.TRUNCATE_LOG
_PURGE_LOG = C.PURGE_LOG
_SAVE_COMMITTED = C.SAVE_COMMITTED
_SEND = C.SEND
_SEND_HEARTBEAT = C.SEND_HEARTBEAT
_RESPOND = C.RESPOND
_APPLY = C.APPLY
_BUILD_SNAPSHOT = C.BUILD_SNAPSHOT
_INSTALL_SNAPSHOT = C.INSTALL_SNAPSHOT
_SEND_SNAPSHOT = C.SEND_SNAPSHOT
_REPLY = C.REPLY


class ClientWriteResponse:
    """The outcome of one client write: its log id, the state machine's answer, and the new
    membership for a membership change."""

    __slots__ = ("log_id", "data", "membership")

    def __init__(self, log_id: LogId, data: Any, membership=None) -> None:
        self.log_id = log_id
        self.data = data
        self.membership = membership

    def __repr__(self) -> str:
        return f"ClientWriteResponse({self.log_id}, {self.data!r})"


class BatchWriteResponses:
    """The outcomes of client_write_many, one per entry, built on access."""

    __slots__ = ("entries", "data")

    def __init__(self, entries, data: List[Any]) -> None:
        self.entries = entries          # [(LogSlice, offset in it, count)]
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def log_id(self, i: int) -> LogId:
        if i < 0:
            i += len(self.data)
        for sl, off, n in self.entries:
            if i < n:
                return sl.log_id_at(sl.start + off + i)
            i -= n
        raise IndexError(i)

    def __getitem__(self, i: int) -> ClientWriteResponse:
        return ClientWriteResponse(self.log_id(i), self.data[i])

    def __iter__(self):
        for i in range(len(self.data)):
            yield self[i]

    @property
    def last_log_id(self) -> LogId:
        return self.log_id(len(self.data) - 1)


class _PendingWrite:
    """Client writes appended as entries [first, first + n): singles (one future each) or
    one batch (one future for all)."""

    __slots__ = ("first", "n", "futs", "batch_fut", "batch_parts", "batch_data")

    def __init__(self, first: int, n: int, futs, batch_fut) -> None:
        self.first = first
        self.n = n
        self.futs = futs
        self.batch_fut = batch_fut
        self.batch_parts: list = []
        self.batch_data: list = []


class RaftCore:
    def __init__(self, node_id: int, config, network_factory, log_store, state_machine, engine: Engine) -> None:
        self.loop = asyncio.get_running_loop()
        self.node_id = node_id
        self.config = config
        self.network_factory = network_factory
        self.log_store = log_store
        self.sm = state_machine
        self.engine = engine
        self.clients: Dict[int, Any] = {}
        self.stopped: Optional[BaseException] = None

        self.events: Deque[Tuple[Callable, tuple]] = deque()
        self.cmds: Deque[Any] = deque()
        self.pumping = False
        self.blocked = False

        # Client writes of this loop iteration, submitted to the engine as one batch.
        self.batch_payloads: List[Any] = []
        self.batch_sinks: List[Tuple[int, Any]] = []      # (count, future): count 0 marks a single write
        self.batch_scheduled = False
        self.batch_has_many = False
        self.pending_writes: Deque[_PendingWrite] = deque()
        # Armed when this node stops leading with pending writes: they wait for apply or
        # truncation at most `orphan_bound` seconds, then fail with OutcomeUnknown.
        self.orphan_timer: Optional[asyncio.TimerHandle] = None
        self.orphan_bound = 2 * config.election_timeout_max
        # Reads of this loop iteration, confirmed by one quorum round.
        self.read_batch: Dict[int, Tuple[asyncio.Future, int]] = {}
        self.read_scheduled = False
        self.read_ids = itertools.count(1)
        self.read_waiters: Dict[int, asyncio.Future] = {}

        # Responses the engine owes to RPCs received: key -> deque of futures.
        self.rpc_waiters: Dict[tuple, Deque[asyncio.Future]] = {}

        self.apply_queue: Deque[tuple] = deque()
        self.applying = False
        self._sync = False          # the apply item being started finished inline
        self.applied_index = 0 if engine.applied is None else engine.applied.index
        self.applied_waiters: List[Tuple[int, int, asyncio.Future, Any]] = []
        self.waiter_seq = itertools.count()

        self.metric_waiters: List[Tuple[Callable, asyncio.Future]] = []
        self.core_waiters: List[Tuple[Callable, asyncio.Future]] = []
        self.timer: Optional[asyncio.TimerHandle] = None
        self.timer_at = float("inf")
        # What the INFO log last reported: (state, leader), membership log id, snapshot.
        self.logged: tuple = (None, None, None)
        # A log store that fails in the background (a group fsync) stops the node at once.
        set_error_handler = getattr(log_store, "set_error_handler", None)
        if set_error_handler is not None:
            set_error_handler(self._log_store_failed)

    # ------------------------------------------------------------------ the pump
    def post(self, fn: Callable, *args) -> None:
        """Queue an engine event (fn returns commands) and run the pump unless it runs."""
        self.events.append((fn, args))
        if not self.pumping:
            self._pump()

    def _pump(self) -> None:
        if self.pumping or self.stopped is not None:
            return
        self.pumping = True
        engine = self.engine
        cmds = self.cmds
        events = self.events
        event = None
        try:
            cmds.extend(engine.tick(self.loop.time()))
            while not self.blocked:
                if cmds:
                    event = None
                    self._exec(cmds.popleft())
                elif events:
                    event = events.popleft()
                    cmds.extend(event[0](*event[1]))
                else:
                    break
        except Exception as exc:
            self.pumping = False
            if event is not None:
                self.events.appendleft(event)   # fatal() fails its futures with the others
            self.fatal(exc if isinstance(exc, RaftError) else Fatal(f"internal error: {exc!r}"), exc)
            return
        self.pumping = False
        if self.stopped is None:
            self._after_pump()

    def _after_pump(self) -> None:
        if log.isEnabledFor(logging.INFO):
            self._log_changes()
        d = self.engine.next_deadline
        if d < self.timer_at - 1e-6 and d < self.loop.time() + 1e6:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = d
            self.timer = self.loop.call_at(d, self._on_timer)
        if self.pending_writes and self.orphan_timer is None and not self.engine.is_leader():
            self._arm_orphan_timer()
        if self.core_waiters:
            self._check_waiters(self.core_waiters, lambda pred: pred(self))
        if self.metric_waiters:
            m = self.metrics()
            self._check_waiters(self.metric_waiters, lambda pred: pred(m))

    def _log_changes(self) -> None:
        """INFO lines for what changed since the last pump: role or leader (elections),
        membership, snapshot."""
        e = self.engine
        role = (e.state_name, e.leader_id)
        snap = None if e.snapshot is None else e.snapshot.last_log_id
        old_role, old_membership, old_snap = self.logged
        if role != old_role:
            log.info("node %s: %s in term %s, leader %s", self.node_id, role[0], e.vote.leader_id.term, role[1])
        if e.membership_log_id != old_membership:
            log.info("node %s: membership %r at %s", self.node_id, e.membership, e.membership_log_id)
        if snap != old_snap:
            log.info("node %s: snapshot up to %s", self.node_id, snap)
        self.logged = (role, e.membership_log_id, snap)

    @staticmethod
    def _check_waiters(waiters, test) -> None:
        for pred, fut in list(waiters):
            if fut.done():
                waiters.remove((pred, fut))
            elif test(pred):
                waiters.remove((pred, fut))
                fut.set_result(None)

    def _on_timer(self) -> None:
        self.timer = None
        self.timer_at = float("inf")
        if self.pumping:
            return
        if self.stopped is None:
            self._pump()

    def _block(self, coro, what: str) -> None:
        """Run a storage call that must finish before the next command."""
        if not start_eager(coro, partial(self._unblock, what)):
            self.blocked = True

    def _unblock(self, what: str, _result, exc) -> None:
        if exc is not None:
            self.fatal(StorageError(f"{what} failed: {exc!r}"), exc)
            return
        if self.blocked:
            self.blocked = False
            self._pump()

    def _log_store_failed(self, exc: BaseException) -> None:
        self.fatal(StorageError(f"log store failed: {exc!r}"), exc)

    # ------------------------------------------------------------------ commands
    def _exec(self, cmd) -> None:
        code = cmd.code
        if code == _SEND:
            self._send(cmd.target, cmd.msg)
        elif code == _APPEND_LOG:
            entries = cmd.entries
            try:
                self.log_store.append(entries, partial(self.post, self.engine.on_log_flushed, entries.last_log_id))
            except Exception as exc:
                raise StorageError(f"append failed: {exc!r}") from exc
        elif code == _RESPOND:
            self._respond(cmd.target, cmd.msg)
        elif code == _APPLY:
            self.apply_queue.append(("apply", cmd.entries))
            if not self.applying:
                self._apply_next()
        elif code == _SEND_HEARTBEAT:
            client = self._client(cmd.target)
            if client is not None:
                self._watch(client.heartbeat(cmd.msg), partial(self._append_done, cmd.target))
        elif code == _SAVE_COMMITTED:
            try:
                self.log_store.save_committed(cmd.log_id)
            except Exception as exc:
                raise StorageError(f"save_committed failed: {exc!r}") from exc
        elif code == _REPLY:
            self._reply(cmd.req_id, cmd.value, cmd.error)
        elif code == _SAVE_VOTE:
            self._block(self.log_store.save_vote(cmd.vote), "save_vote")
        elif code == _TRUNCATE_LOG:
            self._fail_writes_after(cmd.after)
            self._block(self.log_store.truncate_after(cmd.after), "truncate_after")
        elif code == _PURGE_LOG:
            self._block(self.log_store.purge(cmd.upto), "purge")
        elif code == _BUILD_SNAPSHOT:
            self.apply_queue.append(("build",))
            if not self.applying:
                self._apply_next()
        elif code == _INSTALL_SNAPSHOT:
            done = self.loop.create_future()
            self.apply_queue.append(("install", cmd.meta, cmd.data, done))
            if not self.applying:
                self._apply_next()
            if not done.done():
                self.blocked = True
                done.add_done_callback(lambda f: self._unblock("install_snapshot", None, f.exception()))
            elif done.exception() is not None:
                raise StorageError(f"install_snapshot failed: {done.exception()!r}")
        elif code == _SEND_SNAPSHOT:
            self.loop.create_task(self._send_snapshot(cmd.target, cmd.req))
        else:
            raise Fatal(f"unknown command {cmd!r}")

    def _client(self, target):
        client = self.clients.get(target)
        if client is None:
            m = self.engine.membership
            node = None if m is None else m.get_node(target)
            if node is None:
                return None
            client = self.clients[target] = self.network_factory.new_client(target, node)
        return client

    def _watch(self, aw, callback) -> None:
        fut = aw if isinstance(aw, asyncio.Future) else asyncio.ensure_future(aw)
        fut.add_done_callback(callback)

    def _send(self, target, msg) -> None:
        client = self._client(target)
        if client is None:
            return
        t = type(msg)
        if t is AppendRequest:
            self._watch(client.append_entries(msg), partial(self._append_done, target))
        elif t is VoteRequest:
            log.debug("node %s: vote request to %s: %r", self.node_id, target, msg)
            self._watch(client.vote(msg), partial(self._vote_done, target))
        elif t is TimeoutNow:
            log.debug("node %s: TimeoutNow to %s", self.node_id, target)
            self._watch(client.timeout_now(msg), _ignore_result)

    def _append_done(self, target, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None or self.stopped is not None:
            return      # lost messages are resent by the engine's retransmit timer
        self.post(self.engine.recv_append_response, target, fut.result())

    def _vote_done(self, target, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None or self.stopped is not None:
            return
        log.debug("node %s: vote response from %s: %r", self.node_id, target, fut.result())
        self.post(self.engine.recv_vote_response, target, fut.result())

    async def _send_snapshot(self, target, req: InstallSnapshotRequest) -> None:
        try:
            snap = await self.sm.get_current_snapshot()
            if snap is None:
                raise StorageError("no snapshot to send")
            client = self._client(target)
            if client is None:
                raise RaftError(f"no node for target {target}")
            resp = await client.install_snapshot(InstallSnapshotRequest(
                req.vote, snap.meta, snap.data, req.msg_id, req.seq, req.sent_at))
        except Exception as exc:
            if self.stopped is None:
                log.debug("node %s: snapshot to %s failed: %r", self.node_id, target, exc)
                self.post(self.engine.on_snapshot_send_failed, target, req.msg_id)
            return
        if self.stopped is None:
            self.post(self.engine.recv_snapshot_response, target, resp)

    # ------------------------------------------------------------------ receiving side
    def receive(self, kind: str, src, msg, fut: asyncio.Future) -> None:
        """An RPC from `src`; `fut` gets the response (entry point of the networks)."""
        if self.stopped is not None:
            if not fut.done():
                fut.set_exception(Stopped())
            return
        engine = self.engine
        if kind == "append" or kind == "heartbeat":
            self._wait_response(("a", src, msg.seq), fut)
            self.post(engine.recv_append, src, msg)
        elif kind == "vote":
            self._wait_response(("v", src), fut)
            self.post(engine.recv_vote, src, msg)
        elif kind == "snapshot":
            self._wait_response(("s", src, msg.seq), fut)
            self.post(engine.recv_snapshot, src, msg)
        elif kind == "timeout_now":
            fut.set_result(None)
            self.post(engine.recv_timeout_now, src, msg)
        elif kind == "read_index":
            serve_read_index(self, msg, fut)
        else:
            fut.set_exception(RaftError(f"unknown rpc kind {kind!r}"))

    def _wait_response(self, key, fut) -> None:
        q = self.rpc_waiters.get(key)
        if q is None:
            self.rpc_waiters[key] = deque((fut,))
        else:
            q.append(fut)

    def _respond(self, target, msg) -> None:
        t = type(msg)
        key: tuple
        if t is AppendResponse:
            key = ("a", target, msg.seq)
        elif t is VoteResponse:
            key = ("v", target)
        else:
            key = ("s", target, msg.seq)
        q = self.rpc_waiters.get(key)
        if not q:
            return
        fut = q.popleft()
        if not q:
            del self.rpc_waiters[key]
        if not fut.done():
            fut.set_result(msg)

    # ------------------------------------------------------------------ client writes
    def write(self, payload) -> asyncio.Future:
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
            return fut
        self.batch_payloads.append(payload)
        self.batch_sinks.append((0, fut))
        if not self.batch_scheduled:
            self.batch_scheduled = True
            self.loop.call_soon(self._submit_writes)
        return fut

    def write_many(self, payloads: list) -> asyncio.Future:
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
            return fut
        if not payloads:
            fut.set_result(BatchWriteResponses([], []))
            return fut
        self.batch_payloads.extend(payloads)
        self.batch_sinks.append((len(payloads), fut))
        self.batch_has_many = True
        if not self.batch_scheduled:
            self.batch_scheduled = True
            self.loop.call_soon(self._submit_writes)
        return fut

    def _submit_writes(self) -> None:
        self.batch_scheduled = False
        payloads, sinks, many = self.batch_payloads, self.batch_sinks, self.batch_has_many
        self.batch_payloads, self.batch_sinks, self.batch_has_many = [], [], False
        if self.stopped is not None:
            for _, fut in sinks:
                _fail(fut, self.stopped)
            return
        self.post(self._do_write, payloads, sinks, many)

    def _do_write(self, payloads, sinks, many):
        engine = self.engine
        first = engine.log.last_index + 1
        try:
            cmds = engine.client_write(payloads)
        except RaftError as exc:
            for _, fut in sinks:
                _fail(fut, exc)
            return ()
        if not many:
            # Only single writes (the common case): one record for the whole batch.
            self.pending_writes.append(_PendingWrite(first, len(payloads), [f for _, f in sinks], None))
        else:
            for n, fut in sinks:
                if n == 0:
                    self.pending_writes.append(_PendingWrite(first, 1, [fut], None))
                    first += 1
                else:
                    self.pending_writes.append(_PendingWrite(first, n, None, fut))
                    first += n
        return cmds

    def _resolve_writes(self, entries, responses) -> None:
        s, e = entries.start, entries.stop
        pending = self.pending_writes
        while pending:
            w = pending[0]
            if w.first >= e:
                break
            lo = w.first if w.first > s else s
            end = w.first + w.n
            hi = end if end < e else e
            if lo < hi:
                if w.futs is not None:
                    futs = w.futs
                    first = w.first
                    for i in range(lo, hi):
                        fut = futs[i - first]
                        if not fut.done():
                            fut.set_result(ClientWriteResponse(entries.log_id_at(i), responses[i - s]))
                else:
                    w.batch_parts.append((entries, lo - s, hi - lo))
                    w.batch_data.extend(responses[lo - s:hi - s])
            if hi < end:
                break
            pending.popleft()
            if w.batch_fut is not None and not w.batch_fut.done():
                w.batch_fut.set_result(BatchWriteResponses(w.batch_parts, w.batch_data))

    def _fail_writes_after(self, after: int) -> None:
        """Entries past `after` are being truncated here. Another node may still hold them and a
        later leader may commit them: their outcome is unknown to this node."""
        keep: Deque[_PendingWrite] = deque()
        err = None
        for w in self.pending_writes:
            if w.first + w.n - 1 <= after:
                keep.append(w)
                continue
            if err is None:
                err = OutcomeUnknown(OutcomeUnknown.TRUNCATED, "the entry was overwritten by another leader's log")
            _fail_write(w, err)
        self.pending_writes = keep

    def _arm_orphan_timer(self) -> None:
        """This node no longer leads: its pending writes (appended here) may still be applied
        (a new leader commits them) or truncated; give that `orphan_bound` seconds."""
        w = self.pending_writes[-1]
        self.orphan_timer = self.loop.call_later(self.orphan_bound, self._expire_orphans, w.first + w.n - 1)

    def _expire_orphans(self, upto: int) -> None:
        """The bound passed: pending writes up to index `upto` that are neither applied nor
        truncated fail with OutcomeUnknown("leadership_lost"), unless this node leads again
        (then they are its writes again and it commits them)."""
        self.orphan_timer = None
        if self.stopped is not None or self.engine.is_leader():
            return
        pending = self.pending_writes
        err = None
        while pending and pending[0].first <= upto:
            w = pending.popleft()
            if err is None:
                err = OutcomeUnknown(OutcomeUnknown.LEADERSHIP_LOST,
                                     f"this node stopped leading and did not learn the outcome within {self.orphan_bound}s")
            _fail_write(w, err)
        if pending:
            self._arm_orphan_timer()

    # ------------------------------------------------------------------ apply
    def _apply_next(self) -> None:
        """Run queued apply/build/install items in order, inline while they finish at once."""
        while self.apply_queue and self.stopped is None:
            self.applying = True
            item = self.apply_queue.popleft()
            kind = item[0]
            if kind == "apply":
                coro = self.sm.apply(item[1])
            elif kind == "build":
                coro = self.sm.build_snapshot()
            else:
                coro = self.sm.install_snapshot(item[1], item[2])
            self._sync = True
            if not start_eager(coro, partial(self._apply_done, item)):
                self._sync = False
                return      # _apply_done continues the queue
        self.applying = False

    def _apply_done(self, item, result, exc) -> None:
        kind = item[0]
        if exc is not None:
            if kind == "install":
                item[3].set_exception(exc)
            self.fatal(StorageError(f"state machine {kind} failed: {exc!r}"), exc)
            return
        if kind == "apply":
            entries = item[1]
            if self.pending_writes:
                self._resolve_writes(entries, result)
            self._advance_applied(entries.stop - 1)
            self.post(self.engine.on_applied, entries.last_log_id)
        elif kind == "build":
            self.post(self.engine.on_snapshot_built, result.meta)
        else:
            meta = item[1]
            item[3].set_result(None)
            if meta.last_log_id is not None:
                self._advance_applied(meta.last_log_id.index)
            self.post(self.engine.on_snapshot_installed, meta)
        if not self._sync:
            self._apply_next()

    def _advance_applied(self, index: int) -> None:
        if index > self.applied_index:
            self.applied_index = index
        w = self.applied_waiters
        while w and w[0][0] <= self.applied_index:
            _, _, fut, value = heapq.heappop(w)
            if not fut.done():
                fut.set_result(value)

    def wait_applied(self, index: int, value=None) -> asyncio.Future:
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
        elif index <= self.applied_index:
            fut.set_result(value)
        else:
            heapq.heappush(self.applied_waiters, (index, next(self.waiter_seq), fut, value))
        return fut

    # ------------------------------------------------------------------ reads
    def read(self, policy: int) -> asyncio.Future:
        """Confirm a read point by `policy` (engine READ_INDEX or LEASE_READ); the future gets
        the read log id, or the engine's error. It does not wait for apply."""
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
            return fut
        self.read_batch[next(self.read_ids)] = (fut, policy)
        if not self.read_scheduled:
            self.read_scheduled = True
            self.loop.call_soon(self._submit_reads)
        return fut

    def _submit_reads(self) -> None:
        self.read_scheduled = False
        batch, self.read_batch = self.read_batch, {}
        by_policy: Dict[int, List[int]] = {}
        for rid, (fut, policy) in batch.items():
            self.read_waiters[rid] = fut
            by_policy.setdefault(policy, []).append(rid)
        for policy, rids in by_policy.items():
            self.post(self.engine.ensure_linearizable, rids, policy)

    def _reply(self, req_id, value, error) -> None:
        # The read log id is confirmed; the caller (openraft_fast.reads) waits for apply.
        fut = self.read_waiters.pop(req_id, None)
        if fut is None or fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

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
            _fail(fut, exc)
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
        if self.stopped is not None:
            state = ServerState.SHUTDOWN
        elif e.membership is None or self.node_id not in e.membership.node_ids():
            state = ServerState.NOT_MEMBER
        else:
            state = ServerState(e.state)
        return RaftMetrics(
            id=self.node_id,
            state=state,
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

    # ------------------------------------------------------------------ stop
    def fatal(self, err: BaseException, cause: Optional[BaseException] = None) -> None:
        if self.stopped is not None:
            return
        if isinstance(err, Stopped):
            log.info("node %s: shut down", self.node_id)
        else:
            log.error("node %s stops: %s", self.node_id, err, exc_info=cause)
            if not isinstance(err, Fatal):
                wrapped = Fatal(str(err))
                wrapped.__cause__ = err
                err = wrapped
        self.stopped = err
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.orphan_timer is not None:
            self.orphan_timer.cancel()
            self.orphan_timer = None
        if self.pending_writes:
            # Appended but not applied here: another node may hold the entries and commit them.
            unknown = OutcomeUnknown(OutcomeUnknown.STOPPED, str(err))
            unknown.__cause__ = err
            for w in self.pending_writes:
                _fail_write(w, unknown)
        self.pending_writes.clear()
        for _, fut in self.batch_sinks:
            _fail(fut, err)
        self.batch_sinks.clear()
        self.batch_payloads.clear()
        for fut, _ in self.read_batch.values():
            _fail(fut, err)
        for fut in self.read_waiters.values():
            _fail(fut, err)
        self.read_waiters.clear()
        for _, _, fut, _ in self.applied_waiters:
            _fail(fut, err)
        self.applied_waiters.clear()
        for q in self.rpc_waiters.values():
            for fut in q:
                _fail(fut, err)
        self.rpc_waiters.clear()
        for _, fut in self.core_waiters + self.metric_waiters:
            _fail(fut, err)
        self.core_waiters.clear()
        for fn, args in self.events:
            if fn == self._call_event:
                _fail(args[2], err)
            elif fn == self._do_write:
                for _, fut in args[1]:
                    _fail(fut, err)
        self.events.clear()
        self.cmds.clear()
        for c in self.clients.values():
            try:
                c.close()
            except Exception:
                log.exception("closing a network client")
        self.clients.clear()


def _fail(fut: asyncio.Future, err: BaseException) -> None:
    if not fut.done():
        fut.set_exception(err)


def _fail_write(w, err: BaseException) -> None:
    """Fail every caller of one pending write: its per-entry futures, or its batch future."""
    for fut in (w.futs or (w.batch_fut,)):
        _fail(fut, err)


def _chain(dst: asyncio.Future, src: asyncio.Future) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif (exc := src.exception()) is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())


def _ignore_result(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()
