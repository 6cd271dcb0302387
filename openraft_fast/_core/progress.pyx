"""Replication progress of one target (see progress.pxd for the states)."""
from libc.stdint cimport int64_t

from openraft_fast._core.inflight cimport Inflights

_STATE_NAMES = {PROBE: "probe", REPLICATE: "replicate", SNAPSHOT: "snapshot"}
STATE_PROBE = PROBE
STATE_REPLICATE = REPLICATE
STATE_SNAPSHOT = SNAPSHOT
NOTHING = SEND_NONE
LOGS = SEND_LOGS
NEED_SNAPSHOT = SEND_SNAPSHOT


cdef class Progress:
    def __init__(self, node_id, Py_ssize_t slot, int64_t last_index, Py_ssize_t max_inflight=64,
                 int64_t max_inflight_bytes=1 << 62, int64_t matched=0):
        if last_index < 0 or matched < 0 or matched > last_index:
            raise ValueError(f"need 0 <= matched ({matched}) <= last_index ({last_index})")
        self.node_id = node_id
        self.slot = slot
        self.inflight = Inflights(max_inflight, max_inflight_bytes)
        self.next_msg_id = 1
        self.matched = matched
        self.acked_at = -1
        self.c_restart_probe(last_index)

    cdef void c_restart_probe(self, int64_t last_index) noexcept:
        """Forget the stream: probe again, optimistically at `last_index` first."""
        self.state = PROBE
        self.searching_end = last_index + 1
        if self.searching_end <= self.matched:
            self.searching_end = self.matched + 1
        self.next_index = self.matched + 1
        self._try_top = True
        self.inflight.c_reset()

    cdef int c_next_send(self, int64_t first_index, int64_t last_index, int64_t max_entries) noexcept:
        cdef int64_t lo, hi, p
        if self.state == SNAPSHOT:
            return SEND_NONE
        if self.state == PROBE:
            if self.inflight.count > 0:
                return SEND_NONE
            lo = self.matched
            hi = self.searching_end - 1
            if hi > last_index:
                hi = last_index
            if hi <= lo:
                # The match point is found: stream from it.
                self.state = REPLICATE
                self.next_index = self.matched + 1
            else:
                if hi < first_index - 1:
                    return SEND_SNAPSHOT
                if self._try_top:
                    p = hi
                else:
                    p = lo + (hi - lo + 1) // 2
                if p < first_index - 1:
                    p = first_index - 1
                self.send_start = p + 1
                self.send_end = p + 1 + max_entries
                if self.send_end > last_index + 1:
                    self.send_end = last_index + 1
                return SEND_LOGS
        # REPLICATE
        if self.inflight.c_full():
            return SEND_NONE
        if self.next_index < first_index:
            return SEND_SNAPSHOT
        if self.next_index > last_index:
            return SEND_NONE
        self.send_start = self.next_index
        self.send_end = self.next_index + max_entries
        if self.send_end > last_index + 1:
            self.send_end = last_index + 1
        return SEND_LOGS

    cdef int64_t c_sent(self, int64_t nbytes) except -1:
        """Record the message c_next_send decided; returns its id, to be echoed by the ack."""
        cdef int64_t msg_id = self.next_msg_id
        self.inflight.c_add(msg_id, self.send_end - 1, nbytes)
        self.next_msg_id += 1
        if self.state == REPLICATE:
            self.next_index = self.send_end
        return msg_id

    cdef bint c_on_ack(self, int64_t msg_id, int64_t matched) noexcept:
        """The target holds our log up to `matched`. False for a stale ack (ignored)."""
        if self.state == SNAPSHOT or self.inflight.c_free_to(msg_id) < 0:
            return False
        if matched > self.matched:
            self.matched = matched
        if self.searching_end <= self.matched:
            self.searching_end = self.matched + 1
        if self.state == PROBE:
            self.state = REPLICATE
            self.next_index = self.matched + 1
        return True

    cdef bint c_on_reject(self, int64_t msg_id, int64_t prev_index, int64_t hint_last) noexcept:
        """The target's entry at `prev_index` does not match ours; `hint_last` is its last index
        (-1 if unknown). False for a stale reject (ignored)."""
        if self.state == SNAPSHOT or self.inflight.c_free_to(msg_id) < 0:
            return False
        # Everything sent after it was built on the same wrong assumption.
        self.inflight.c_reset()
        self.state = PROBE
        if prev_index < self.searching_end:
            self.searching_end = prev_index
        self._try_top = False
        if 0 <= hint_last and hint_last + 1 < self.searching_end:
            self.searching_end = hint_last + 1
            self._try_top = True
        if self.searching_end <= self.matched:
            # A durable target never loses what it acked; keep the known match.
            self.searching_end = self.matched + 1
        return True

    cdef int64_t c_begin_snapshot(self, int64_t snapshot_index) except -1:
        cdef int64_t msg_id = self.next_msg_id
        self.state = SNAPSHOT
        self.inflight.c_reset()
        self.inflight.c_add(msg_id, snapshot_index, 0)
        self.next_msg_id += 1
        return msg_id

    cdef bint c_on_snapshot(self, int64_t msg_id, int64_t snapshot_index, bint ok) noexcept:
        """The snapshot stream `msg_id` ended; on success the target holds up to snapshot_index."""
        if self.state != SNAPSHOT or self.inflight.c_free_to(msg_id) < 0:
            return False
        if ok and snapshot_index > self.matched:
            self.matched = snapshot_index
        self.state = PROBE
        self.inflight.c_reset()
        # The target's log past the snapshot is resolved by the target itself (it skips
        # matching entries and truncates conflicting ones), so stream from the snapshot.
        self.searching_end = self.matched + 1
        self._try_top = True
        return True

    # Python-facing wrappers (tests, debugging, the runtime's slow paths).
    def next_send(self, int64_t first_index, int64_t last_index, int64_t max_entries):
        """None, ("logs", start, end) or ("snapshot",)."""
        cdef int r = self.c_next_send(first_index, last_index, max_entries)
        if r == SEND_LOGS:
            return ("logs", self.send_start, self.send_end)
        if r == SEND_SNAPSHOT:
            return ("snapshot",)
        return None

    def sent(self, int64_t nbytes=0):
        return self.c_sent(nbytes)

    def on_ack(self, int64_t msg_id, int64_t matched):
        return self.c_on_ack(msg_id, matched)

    def on_reject(self, int64_t msg_id, int64_t prev_index, int64_t hint_last=-1):
        return self.c_on_reject(msg_id, prev_index, hint_last)

    def begin_snapshot(self, int64_t snapshot_index):
        return self.c_begin_snapshot(snapshot_index)

    def on_snapshot(self, int64_t msg_id, int64_t snapshot_index, bint ok=True):
        return self.c_on_snapshot(msg_id, snapshot_index, ok)

    def restart_probe(self, int64_t last_index):
        self.c_restart_probe(last_index)

    @property
    def state_name(self):
        return _STATE_NAMES[self.state]

    def __repr__(self):
        return (f"Progress(node={self.node_id!r}, {_STATE_NAMES[self.state]}, matched={self.matched}, "
                f"next={self.next_index}, searching_end={self.searching_end}, inflight={self.inflight.count})")
