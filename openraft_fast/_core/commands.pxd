# What the engine asks the runtime to do. The runtime executes commands in the order given;
# storage commands run in that order too, and SaveVote, TruncateLog, PurgeLog and SaveCommitted
# are durable before any later command runs. AppendLog may finish later: the runtime reports
# engine.log_flushed(last log id) once the entries are durable. `code` allows a switch.
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.messages cimport InstallSnapshotRequest, SnapshotMeta
from openraft_fast._core.record cimport Record
from openraft_fast._core.types cimport LogId, Vote

cdef enum:
    CMD_SAVE_VOTE = 1
    CMD_APPEND_LOG = 2
    CMD_TRUNCATE_LOG = 3
    CMD_PURGE_LOG = 4
    CMD_SAVE_COMMITTED = 5
    CMD_SEND = 6
    CMD_SEND_HEARTBEAT = 7
    CMD_RESPOND = 8
    CMD_APPLY = 9
    CMD_BUILD_SNAPSHOT = 10
    CMD_INSTALL_SNAPSHOT = 11
    CMD_SEND_SNAPSHOT = 12
    CMD_REPLY = 13


cdef class Command(Record):
    cdef readonly int code


cdef class SaveVote(Command):
    cdef readonly Vote vote


cdef class AppendLog(Command):
    cdef readonly LogSlice entries


cdef class TruncateLog(Command):
    cdef readonly int64_t after         # keep entries <= after


cdef class PurgeLog(Command):
    cdef readonly LogId upto            # drop entries <= upto.index (may lie past the last entry)


cdef class SaveCommitted(Command):
    cdef readonly LogId log_id


cdef class Send(Command):
    cdef readonly object target
    cdef readonly object msg            # VoteRequest, AppendRequest or TimeoutNow


cdef class SendHeartbeat(Command):
    cdef readonly object target
    cdef readonly object msg            # AppendRequest without entries: never queued behind bulk data


cdef class Respond(Command):
    cdef readonly object target
    cdef readonly object msg            # VoteResponse, AppendResponse or SnapshotResponse


cdef class Apply(Command):
    cdef readonly LogSlice entries      # committed entries, in order; report engine.applied(last)


cdef class BuildSnapshot(Command):
    pass                                # report engine.snapshot_built(meta)


cdef class InstallSnapshot(Command):
    cdef readonly SnapshotMeta meta
    cdef readonly object data           # replace the state machine; report engine.snapshot_installed(meta)


cdef class SendSnapshot(Command):
    cdef readonly object target
    cdef readonly InstallSnapshotRequest req   # data None: the runtime streams the current snapshot


cdef class Reply(Command):
    cdef readonly object req_id
    cdef readonly object value
    cdef readonly object error          # an exception instance, or None
