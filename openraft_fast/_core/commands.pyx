"""Commands the engine emits (see commands.pxd for the execution contract)."""
from libc.stdint cimport int64_t

from openraft_fast._core.log cimport LogSlice
from openraft_fast._core.messages cimport InstallSnapshotRequest, SnapshotMeta
from openraft_fast._core.record cimport Record
from openraft_fast._core.types cimport LogId, Vote

SAVE_VOTE = CMD_SAVE_VOTE
APPEND_LOG = CMD_APPEND_LOG
TRUNCATE_LOG = CMD_TRUNCATE_LOG
PURGE_LOG = CMD_PURGE_LOG
SAVE_COMMITTED = CMD_SAVE_COMMITTED
SEND = CMD_SEND
SEND_HEARTBEAT = CMD_SEND_HEARTBEAT
RESPOND = CMD_RESPOND
APPLY = CMD_APPLY
BUILD_SNAPSHOT = CMD_BUILD_SNAPSHOT
INSTALL_SNAPSHOT = CMD_INSTALL_SNAPSHOT
SEND_SNAPSHOT = CMD_SEND_SNAPSHOT
REPLY = CMD_REPLY


cdef class Command(Record):
    pass


cdef class SaveVote(Command):
    _fields = ("vote",)

    def __init__(self, Vote vote not None):
        self.code = CMD_SAVE_VOTE
        self.vote = vote


cdef class AppendLog(Command):
    _fields = ("entries",)

    def __init__(self, LogSlice entries not None):
        self.code = CMD_APPEND_LOG
        self.entries = entries


cdef class TruncateLog(Command):
    _fields = ("after",)

    def __init__(self, int64_t after):
        self.code = CMD_TRUNCATE_LOG
        self.after = after


cdef class PurgeLog(Command):
    _fields = ("upto",)

    def __init__(self, LogId upto not None):
        self.code = CMD_PURGE_LOG
        self.upto = upto


cdef class SaveCommitted(Command):
    _fields = ("log_id",)

    def __init__(self, LogId log_id not None):
        self.code = CMD_SAVE_COMMITTED
        self.log_id = log_id


cdef class Send(Command):
    _fields = ("target", "msg")

    def __init__(self, target, msg):
        self.code = CMD_SEND
        self.target = target
        self.msg = msg


cdef class SendHeartbeat(Command):
    _fields = ("target", "msg")

    def __init__(self, target, msg):
        self.code = CMD_SEND_HEARTBEAT
        self.target = target
        self.msg = msg


cdef class Respond(Command):
    _fields = ("target", "msg")

    def __init__(self, target, msg):
        self.code = CMD_RESPOND
        self.target = target
        self.msg = msg


cdef class Apply(Command):
    _fields = ("entries",)

    def __init__(self, LogSlice entries not None):
        self.code = CMD_APPLY
        self.entries = entries


cdef class BuildSnapshot(Command):
    _fields = ()

    def __init__(self):
        self.code = CMD_BUILD_SNAPSHOT


cdef class InstallSnapshot(Command):
    _fields = ("meta", "data")

    def __init__(self, SnapshotMeta meta not None, data):
        self.code = CMD_INSTALL_SNAPSHOT
        self.meta = meta
        self.data = data


cdef class SendSnapshot(Command):
    _fields = ("target", "req")

    def __init__(self, target, InstallSnapshotRequest req not None):
        self.code = CMD_SEND_SNAPSHOT
        self.target = target
        self.req = req


cdef class Reply(Command):
    _fields = ("req_id", "value", "error")

    def __init__(self, req_id, value=None, error=None):
        self.code = CMD_REPLY
        self.req_id = req_id
        self.value = value
        self.error = error
