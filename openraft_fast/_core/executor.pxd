from openraft_fast._core.applier cimport Applier
from openraft_fast._core.commands cimport Command
from openraft_fast._core.engine cimport Engine
from openraft_fast._core.events cimport EventQueue
from openraft_fast._core.inbox cimport RpcInbox
from openraft_fast._core.peers cimport Peers
from openraft_fast._core.writes cimport ClientWrites


cdef class Executor(EventQueue):
    cdef object loop
    cdef readonly Engine engine
    cdef object log_store
    cdef readonly ClientWrites writes
    cdef readonly Applier applier
    cdef readonly Peers peers
    cdef readonly RpcInbox inbox
    cdef object cmds                    # deque: commands of the current event not yet run
    cdef readonly long long events_run  # engine events handled (one call into the engine each)
    cdef readonly long long commands_run
    cdef bint blocked                   # a storage call the next command must wait for runs
    cdef object timer
    cdef double timer_at
    cdef object on_log_flushed, client_write
    cdef public object on_reply         # on_reply(req_id, value, error): a read point confirmed
    cdef public object on_send_snapshot # on_send_snapshot(target, InstallSnapshotRequest)
    cdef public object after_pump_hook  # after_pump_hook(): waiters, INFO logging, events (Python)
    cdef public bint watched            # someone iterates Raft.events(): call it on changes too
    cdef public object forward_write    # forward_write(payloads, batch, timeout): a forwarded write (Python)
    cdef public list core_waiters       # [(predicate on the core, future)]
    cdef public list metric_waiters     # [(predicate on RaftMetrics, future)]
    # What the engine showed at the last pump, to call after_pump_hook for the INFO log and
    # the events only when something they report changed (checking the log level costs a
    # Python call). leader_lost: a follower gave up on its leader (the known leader is None).
    cdef int seen_state
    cdef bint seen_leader_lost
    cdef object seen_vote, seen_membership_log_id, seen_snapshot

    cdef int _exec(self, Command cmd) except -1
    cdef int _after_pump(self) except -1
    cdef int _block(self, object coro, str what) except -1
