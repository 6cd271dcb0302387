"""Plain-Python references for the microbenchmarks, written the way a reasonable Python
programmer would: same algorithms and semantics as the compiled primitives (so results can be
compared one for one), idiomatic code, __slots__, no tricks.

- PyMajority.committed_index: sorted() of the matched indexes, take the quorum-th largest.
- PyProgress.on_ack / PyTracker.update: a deque of in-flight messages, a list of matched
  indexes by slot, and the same "recompute only when this voter crosses the accepted index"
  shortcut as ProgressTracker.c_update.
- PyLog: the obvious log, a list with one (index, leader_id, kind, payload) tuple per entry.
- PyColumnarLog: LogBuffer's own layout (payload list, kinds bytearray, running byte count,
  leader-id runs) in plain Python, returning the same slice contents as LogBuffer.slice: it
  separates what compilation buys from what the layout buys.
"""
from bisect import bisect_right
from collections import deque

PROBE, REPLICATE, SNAPSHOT = 0, 1, 2
NORMAL = 0


class PyMajority:
    """More than half of `members`; slots are the sorted member ids, as in Majority."""

    __slots__ = ("ids", "need")

    def __init__(self, members):
        self.ids = tuple(sorted(set(members)))
        self.need = len(self.ids) // 2 + 1

    def committed_index(self, matched):
        """`matched`: the voters' matched indexes in slot order."""
        return sorted(matched, reverse=True)[self.need - 1]


class PyProgress:
    """Replication progress of one target (the streaming part of Progress)."""

    __slots__ = ("node_id", "slot", "state", "matched", "next_index", "searching_end",
                 "inflight", "inflight_bytes", "max_inflight", "next_msg_id", "send_end")

    def __init__(self, node_id, slot, last_index, max_inflight=64, matched=0):
        self.node_id = node_id
        self.slot = slot
        self.state = PROBE
        self.matched = matched
        self.next_index = matched + 1
        self.searching_end = max(last_index + 1, matched + 1)
        self.inflight = deque()          # (msg_id, end_index, nbytes), oldest first
        self.inflight_bytes = 0
        self.max_inflight = max_inflight
        self.next_msg_id = 1
        self.send_end = 0

    def next_send(self, first_index, last_index, max_entries):
        """None or ("logs", start, end). Only a probe that already knows the match point is
        handled (the benchmarks never bisect)."""
        if self.state == SNAPSHOT:
            return None
        if self.state == PROBE:
            if self.inflight:
                return None
            if min(self.searching_end - 1, last_index) > self.matched:
                raise NotImplementedError("bisecting probe: not needed by the benchmarks")
            self.state = REPLICATE
            self.next_index = self.matched + 1
        if len(self.inflight) >= self.max_inflight or self.next_index > last_index:
            return None
        if self.next_index < first_index:
            return ("snapshot",)
        self.send_end = min(self.next_index + max_entries, last_index + 1)
        return ("logs", self.next_index, self.send_end)

    def sent(self, nbytes=0):
        msg_id = self.next_msg_id
        self.next_msg_id += 1
        self.inflight.append((msg_id, self.send_end - 1, nbytes))
        self.inflight_bytes += nbytes
        if self.state == REPLICATE:
            self.next_index = self.send_end
        return msg_id

    def on_ack(self, msg_id, matched):
        """The target holds our log up to `matched`. False for a stale ack (ignored)."""
        inflight = self.inflight
        if self.state == SNAPSHOT or not inflight or not inflight[0][0] <= msg_id <= inflight[-1][0]:
            return False
        while inflight and inflight[0][0] <= msg_id:
            self.inflight_bytes -= inflight.popleft()[2]
        if matched > self.matched:
            self.matched = matched
        if self.searching_end <= self.matched:
            self.searching_end = self.matched + 1
        if self.state == PROBE:
            self.state = REPLICATE
            self.next_index = self.matched + 1
        return True


class PyTracker:
    """Per-target progress plus the quorum-accepted index."""

    __slots__ = ("quorum", "self_id", "slot_of", "matched", "progress", "accepted")

    def __init__(self, quorum, self_id, targets, last_index, max_inflight=64, self_matched=0):
        self.quorum = quorum
        self.self_id = self_id
        self.slot_of = {v: i for i, v in enumerate(quorum.ids)}
        self.matched = [0] * len(quorum.ids)
        self.progress = {t: PyProgress(t, self.slot_of.get(t, -1), last_index, max_inflight)
                         for t in targets if t != self_id}
        if self_id in self.slot_of:
            self.matched[self.slot_of[self_id]] = self_matched
        self.accepted = quorum.committed_index(self.matched)

    def update(self, node_id, index):
        """Raise node_id's matched index; returns the quorum-accepted index."""
        slot = self.slot_of.get(node_id)
        if slot is None:
            return self.accepted
        old = self.matched[slot]
        if index <= old:
            return self.accepted
        self.matched[slot] = index
        if old <= self.accepted < index:
            self.accepted = self.quorum.committed_index(self.matched)
        return self.accepted


class PyLog:
    """A list of (index, leader_id, kind, payload) entries; a slice is a list slice."""

    __slots__ = ("entries", "first_index")

    def __init__(self):
        self.entries = []
        self.first_index = 1

    @property
    def last_index(self):
        return self.first_index + len(self.entries) - 1

    def append(self, leader_id, payloads, kind=NORMAL):
        """Append entries of one leader and kind; returns the new last index."""
        index = self.first_index + len(self.entries)
        self.entries.extend([(index + i, leader_id, kind, p) for i, p in enumerate(payloads)])
        return index + len(payloads) - 1

    def slice(self, start, stop):
        if start < self.first_index or stop > self.last_index + 1 or start > stop:
            raise IndexError(f"slice [{start}, {stop}) outside the log")
        return self.entries[start - self.first_index:stop - self.first_index]


class PySlice:
    __slots__ = ("start", "stop", "payloads", "kinds", "runs", "nbytes")

    def __init__(self, start, stop, payloads, kinds, runs, nbytes):
        self.start = start
        self.stop = stop
        self.payloads = payloads
        self.kinds = kinds
        self.runs = runs
        self.nbytes = nbytes


class PyColumnarLog:
    """LogBuffer's layout in plain Python (no purge: the benchmarks do not need it)."""

    __slots__ = ("payloads", "kinds", "cum", "run_starts", "run_leaders", "first_index", "last_index")

    def __init__(self):
        self.payloads = []
        self.kinds = bytearray()
        self.cum = [0]                   # cum[i]: payload bytes before entry first_index + i
        self.run_starts = []
        self.run_leaders = []
        self.first_index = 1
        self.last_index = 0

    def append(self, leader_id, payloads, kind=NORMAL):
        n = len(payloads)
        if not n:
            return self.last_index
        if not self.run_leaders or self.run_leaders[-1] != leader_id:
            self.run_starts.append(self.last_index + 1)
            self.run_leaders.append(leader_id)
        self.payloads.extend(payloads)
        self.kinds.extend(bytes((kind,)) * n)
        cum = self.cum
        total = cum[-1]
        for p in payloads:
            if type(p) is bytes:
                total += len(p)
            cum.append(total)
        self.last_index += n
        return self.last_index

    def slice(self, start, stop):
        if start < self.first_index or stop > self.last_index + 1 or start > stop:
            raise IndexError(f"slice [{start}, {stop}) outside the log")
        a = start - self.first_index
        b = stop - self.first_index
        runs = []
        if stop > start:
            starts = self.run_starts
            for j in range(bisect_right(starts, start) - 1, len(starts)):
                if starts[j] >= stop:
                    break
                runs.append((max(starts[j], start), self.run_leaders[j]))
        return PySlice(start, stop, self.payloads[a:b], bytes(self.kinds[a:b]), tuple(runs),
                       self.cum[b] - self.cum[a])


class MsgpackWire:
    """The append-entries message as msgpack, the usual way to put it on the wire from Python:
    [vote, prev, commit, msg_id, seq, sent_at, [[term, node, index, kind, payload], ...]] with a
    reused Packer, and a streaming Unpacker per connection."""

    __slots__ = ("packer", "unpacker")

    def __init__(self):
        import msgpack
        self.packer = msgpack.Packer(use_bin_type=True)
        self.unpacker = msgpack.Unpacker(raw=False)

    def encode(self, msg):
        return self.packer.pack(msg)

    def decode(self, data):
        self.unpacker.feed(data)
        return list(self.unpacker)

    def round_trip(self, msg):
        return self.decode(self.encode(msg))
