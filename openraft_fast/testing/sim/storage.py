"""Simulated storage of one node: what survives a crash and what does not.

Durable at once: the vote, truncations, purges, the committed log id, the state machine and the
snapshot. Volatile until a flush completes: the tail of the log written by AppendLog. A crash
keeps the log up to `durable_upto` and drops the rest.
"""
from collections import deque

from openraft_fast._core.log import LogBuffer
from openraft_fast._core.types import BLANK, MEMBERSHIP


class ContractError(Exception):
    """A command that breaks the storage contract (a hole in the log, a bad purge)."""


def write_payload(op_id, key, value):
    return b"w:%d:%s:%d" % (op_id, key.encode(), value)


def decode_write(payload):
    """(op_id, key, value) of a workload write, or None for anything else."""
    if type(payload) is not bytes or not payload.startswith(b"w:"):
        return None
    _, op, key, value = payload.split(b":", 3)
    return int(op), key.decode(), int(value)


class StateMachine:
    """The durable key-value state machine: applied never goes backwards across restarts."""
    __slots__ = ("kv", "applied", "membership")

    def __init__(self):
        self.kv = {}
        self.applied = None          # LogId of the last applied entry
        self.membership = None       # (LogId, Membership) of the last applied membership entry

    def apply(self, entry):
        if entry.kind == MEMBERSHIP:
            self.membership = (entry.log_id, entry.payload)
        elif entry.kind != BLANK:
            w = decode_write(entry.payload)
            if w is not None:
                self.kv[w[1]] = w[2]
        self.applied = entry.log_id

    def data(self):
        """Snapshot data: a copy of everything the state machine holds."""
        return (dict(self.kv), self.applied, self.membership)

    def restore(self, data):
        kv, applied, membership = data
        self.kv = dict(kv)
        self.applied = applied
        self.membership = membership


class FlushRecord:
    """One AppendLog waiting for its flush. `durable_to` shrinks when a truncation cuts into
    the entries; `intact` turns False once any of them is gone (no on_log_flushed then)."""
    __slots__ = ("start", "last_log_id", "durable_to", "intact")

    def __init__(self, start, last_log_id):
        self.start = start
        self.last_log_id = last_log_id
        self.durable_to = last_log_id.index
        self.intact = True


class NodeStorage:
    def __init__(self):
        self.vote = None
        self.log = LogBuffer()           # what the node has written (durable + volatile tail)
        self.durable_upto = 0            # entries <= this survive a crash (purged ones count)
        self.committed = None
        self.snapshot = None             # (SnapshotMeta, data)
        self.sm = StateMachine()
        self.flushes = deque()           # FlushRecord, completed in order
        self.sm_ops = deque()            # state machine work, done in order:
                                         # ("apply", LogSlice) | ("build",) | ("install", meta, data)

    # -- log commands --
    def append(self, entries):
        if entries.start != self.log.last_index + 1:
            raise ContractError(f"AppendLog{entries!r} does not start right after the last entry "
                                f"{self.log.last_index} (no TruncateLog before it?)")
        self.log.append_slice(entries)
        rec = FlushRecord(entries.start, entries.last_log_id)
        self.flushes.append(rec)
        return rec

    def append_durable(self, entries):
        """A store durable on append: the entries survive a crash from now on."""
        self.append(entries)
        self.flushes.pop()
        self.durable_upto = max(self.durable_upto, entries.stop - 1)

    def truncate(self, after):
        if after < self.log.first_index - 1:
            raise ContractError(f"TruncateLog(after={after}) cuts into the purged prefix "
                                f"(purged up to {self.log.first_index - 1})")
        self.log.truncate_after(after)
        self.durable_upto = min(self.durable_upto, after)
        for rec in self.flushes:
            if rec.last_log_id.index > after:
                rec.intact = False
                rec.durable_to = min(rec.durable_to, after)

    def purge(self, upto):
        log = self.log
        if upto.index > log.last_index:
            # Past the last entry (after a snapshot install): the log restarts after `upto`.
            log.reset(upto)
            for rec in self.flushes:
                rec.intact = False
                rec.durable_to = -1
        else:
            held = log.log_id_at(upto.index)
            if held != upto:
                raise ContractError(f"PurgeLog(upto={upto}) but the log holds {held} at that index")
            log.purge_upto(upto.index)
        self.durable_upto = max(self.durable_upto, upto.index)

    def complete_flush(self):
        """Finish the oldest pending flush; returns it."""
        rec = self.flushes.popleft()
        if rec.durable_to >= rec.start:
            self.durable_upto = max(self.durable_upto, min(rec.durable_to, self.log.last_index))
        return rec

    # -- crash and restart --
    def crash(self):
        """Lose everything volatile: the unflushed log tail and all pending work."""
        self.flushes.clear()
        self.sm_ops.clear()
        keep = max(self.durable_upto, self.log.first_index - 1)
        if keep < self.log.last_index:
            self.log.truncate_after(keep)
        self.durable_upto = self.log.last_index

    def durable_log_copy(self):
        """A fresh LogBuffer with the durable log, for the restarting engine to own."""
        log = self.log
        buf = LogBuffer(log.purged)
        end = min(self.durable_upto, log.last_index)
        if end >= log.first_index:
            buf.append_slice(log.slice(log.first_index, end + 1))
        return buf

    def persisted(self):
        """The fields of a PersistedState."""
        return dict(vote=self.vote, log=self.durable_log_copy(), committed=self.committed,
                    snapshot=self.snapshot[0] if self.snapshot else None,
                    applied=self.sm.applied, applied_membership=self.sm.membership)
