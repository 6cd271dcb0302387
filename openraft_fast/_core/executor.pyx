"""The event pump and command executor (runtime concern).

Events (client writes, RPCs, responses, completions, timer expiry) go through one queue. The
pump takes them in order, calls the engine, and runs the commands it returns in order, with a
C switch on the command code. Commands that complete without waiting (appending to the log
store, sending, replying) run inline; one that must wait (saving the vote, truncating,
purging, installing a snapshot) blocks the pump until it is durable, so the order the engine
chose is the order things happen. It crosses into Python only to call the user's storage,
state machine or network, and the engine's event methods."""
import logging
from collections import deque
from functools import partial

from openraft_fast._core.applier cimport Applier
from openraft_fast._core.commands cimport (
    CMD_APPEND_LOG, CMD_APPLY, CMD_BUILD_SNAPSHOT, CMD_INSTALL_SNAPSHOT, CMD_PURGE_LOG, CMD_REPLY, CMD_RESPOND,
    CMD_SAVE_COMMITTED, CMD_SAVE_VOTE, CMD_SEND, CMD_SEND_HEARTBEAT, CMD_SEND_SNAPSHOT, CMD_TRUNCATE_LOG, AppendLog,
    Apply, Command, InstallSnapshot, PurgeLog, Reply, Respond, SaveCommitted, SaveVote, Send, SendHeartbeat,
    SendSnapshot, TruncateLog)
from openraft_fast._core.engine cimport Engine
from openraft_fast._core.events cimport EventQueue
from openraft_fast._core.inbox cimport RpcInbox
from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.peers cimport Peers
from openraft_fast._core.writes cimport BatchWriteResponses, ClientWrites, as_payload
from openraft_fast._core.writes import fail_sinks
from openraft_fast._aio import start_eager
from openraft_fast.errors import Fatal, RaftError, StorageError

log = logging.getLogger("openraft_fast")
cdef int INFO = logging.INFO
cdef double INF = float("inf")


def _already_flushed():
    pass


cdef class Executor(EventQueue):
    def __init__(self, loop, engine, log_store, sm, network_factory, double orphan_bound):
        self.loop = loop
        self.engine = engine
        self.log_store = log_store
        self.cmds = deque()
        self.timer_at = INF
        self.seen_state = -1
        self.on_log_flushed = engine.on_log_flushed
        self.client_write = engine.client_write
        self.core_waiters = []
        self.metric_waiters = []
        self.writes = ClientWrites(loop, self._submit_writes, engine.is_leader, orphan_bound)
        self.applier = Applier(self, loop, sm, engine, self.writes)
        self.peers = Peers(self, network_factory, engine)
        self.inbox = RpcInbox(self, engine, None)

    # ------------------------------------------------------------------ client writes
    def write(self, payload, bint forward=False, timeout=None):
        if forward:
            return self.forward_write([as_payload(payload)], False, timeout)
        if type(payload) is not bytes:
            payload = as_payload(payload)       # raises, before anything is queued
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
        else:
            self.writes.add(payload, fut)
        return fut

    def write_into(self, payload, sink):
        """write() for servers: `sink` (anything with a Future's done, set_result and
        set_exception) is resolved directly, from the callback that applies the entry: no
        future, no callback handle. Its methods must be quick and must not raise."""
        if type(payload) is not bytes:
            payload = as_payload(payload)
        if self.stopped is not None:
            sink.set_exception(self.stopped)
        else:
            self.writes.add(payload, sink)

    def write_many(self, list payloads):
        fut = self.loop.create_future()
        if self.stopped is not None:
            fut.set_exception(self.stopped)
        elif not payloads:
            fut.set_result(BatchWriteResponses([], []))
        else:
            self.writes.add_many(payloads, fut)
        return fut

    def _submit_writes(self):
        payloads, sinks, many = self.writes.take_batch()
        if self.stopped is not None:
            fail_sinks(sinks, self.stopped)
            return
        self.push(self._do_write, (payloads, sinks, many))

    def _do_write(self, list payloads, list sinks, bint many):
        first = self.engine.log.last_index + 1
        try:
            cmds = self.client_write(payloads)
        except RaftError as exc:
            fail_sinks(sinks, exc)
            return ()
        self.writes.track(first, sinks, many)
        return cmds

    # ------------------------------------------------------------------ the pump
    cdef int pump(self) except -1:
        if self.pumping or self.stopped is not None:
            return 0
        self.pumping = True
        cmds = self.cmds
        events = self.events
        event = None
        try:
            cmds.extend(self.engine.tick(self.loop.time()))
            while not self.blocked:
                if cmds:
                    event = None
                    self.commands_run += 1
                    self._exec(<Command>cmds.popleft())
                elif events:
                    event = events.popleft()
                    self.events_run += 1
                    out = event[0](*event[1])
                    if out:
                        cmds.extend(out)
                else:
                    break
        except Exception as exc:
            self.pumping = False
            if event is not None:
                events.appendleft(event)    # fatal() fails its futures with the others
            self.on_fatal(exc if isinstance(exc, RaftError) else Fatal(f"internal error: {exc!r}"), exc)
            return 0
        self.pumping = False
        if self.stopped is None:
            self._after_pump()
        return 0

    cdef int _after_pump(self) except -1:
        cdef double d = self.engine.next_deadline
        if d < self.timer_at - 1e-6 and d < self.loop.time() + 1e6:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = d
            self.timer = self.loop.call_at(d, self._on_timer)
        if self.writes.pending and self.writes.orphan_timer is None and not self.engine.is_leader():
            self.writes.arm_orphans()
        cdef Engine e = self.engine
        cdef bint changed = (e.state != self.seen_state or e.vote is not self.seen_vote
                             or e.leader_lost != self.seen_leader_lost
                             or e.membership_log_id is not self.seen_membership_log_id
                             or e.snapshot is not self.seen_snapshot)
        if changed:
            self.seen_state = e.state
            self.seen_leader_lost = e.leader_lost
            self.seen_vote = e.vote
            self.seen_membership_log_id = e.membership_log_id
            self.seen_snapshot = e.snapshot
        if self.core_waiters or self.metric_waiters or (changed and (self.watched or log.isEnabledFor(INFO))):
            self.after_pump_hook()
        return 0

    def _on_timer(self):
        self.timer = None
        self.timer_at = INF
        if not self.pumping and self.stopped is None:
            self.pump()

    def cancel_timer(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.cmds.clear()

    # ------------------------------------------------------------------ commands
    cdef int _exec(self, Command cmd) except -1:
        cdef int code = cmd.code
        cdef LogSlice entries
        if code == CMD_SEND:
            self.peers.send((<Send>cmd).target, (<Send>cmd).msg)
        elif code == CMD_APPEND_LOG:
            entries = (<AppendLog>cmd).entries
            try:
                # A durable_on_append store: the engine took the flush as done (sync_log).
                self.log_store.append(entries, _already_flushed if self.engine.sync_log else
                                      partial(self.post, self.on_log_flushed, entries.last_log_id))
            except Exception as exc:
                raise StorageError(f"append failed: {exc!r}") from exc
        elif code == CMD_RESPOND:
            self.inbox.respond((<Respond>cmd).target, (<Respond>cmd).msg)
        elif code == CMD_APPLY:
            self.applier.apply((<Apply>cmd).entries)
        elif code == CMD_SEND_HEARTBEAT:
            self.peers.heartbeat((<SendHeartbeat>cmd).target, (<SendHeartbeat>cmd).msg)
        elif code == CMD_SAVE_COMMITTED:
            try:
                self.log_store.save_committed((<SaveCommitted>cmd).log_id)
            except Exception as exc:
                raise StorageError(f"save_committed failed: {exc!r}") from exc
        elif code == CMD_REPLY:
            self.on_reply((<Reply>cmd).req_id, (<Reply>cmd).value, (<Reply>cmd).error)
        elif code == CMD_SAVE_VOTE:
            self._block(self.log_store.save_vote((<SaveVote>cmd).vote), "save_vote")
        elif code == CMD_TRUNCATE_LOG:
            self.writes.fail_after((<TruncateLog>cmd).after)
            self._block(self.log_store.truncate_after((<TruncateLog>cmd).after), "truncate_after")
        elif code == CMD_PURGE_LOG:
            self._block(self.log_store.purge((<PurgeLog>cmd).upto), "purge")
        elif code == CMD_BUILD_SNAPSHOT:
            self.applier.build_snapshot()
        elif code == CMD_INSTALL_SNAPSHOT:
            done = self.loop.create_future()
            self.applier.install_snapshot((<InstallSnapshot>cmd).meta, (<InstallSnapshot>cmd).data, done)
            if not done.done():
                self.blocked = True
                done.add_done_callback(self._snapshot_installed)
            elif done.exception() is not None:
                raise StorageError(f"install_snapshot failed: {done.exception()!r}")
        elif code == CMD_SEND_SNAPSHOT:
            self.on_send_snapshot((<SendSnapshot>cmd).target, (<SendSnapshot>cmd).req)
        else:
            raise Fatal(f"unknown command {cmd!r}")
        return 0

    def _snapshot_installed(self, fut):
        self._unblock("install_snapshot", None, None if fut.cancelled() else fut.exception())

    cdef int _block(self, object coro, str what) except -1:
        """Run a storage call that must finish before the next command."""
        if not start_eager(coro, partial(self._unblock, what)):
            self.blocked = True
        return 0

    def _unblock(self, what, _result, exc):
        if exc is not None:
            self.on_fatal(StorageError(f"{what} failed: {exc!r}"), exc)
            return
        if self.blocked:
            self.blocked = False
            self.pump()
