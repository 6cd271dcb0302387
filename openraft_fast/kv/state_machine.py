"""KvStateMachine: the replicated key-value state (see `commands` for what entries hold)."""
from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import os
from collections import deque
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Tuple

import msgpack

from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import NORMAL
from openraft_fast.errors import InvalidArgument, StorageError
from openraft_fast.kv import txn
from openraft_fast.kv.commands import (CAS_REVISION, CAS_VALUE, DELETE, DELETE_RANGE, LEASE_GRANT, LEASE_REVOKE, PUT,
                                      TXN)
from openraft_fast.kv.lease_table import LeaseTable
from openraft_fast.storage.base import Snapshot
from openraft_fast.storage.snapshotting import SnapshottingStateMachine
from openraft_fast.storage.wal import WalLogStore

_log = logging.getLogger("openraft_fast.kv")

SNAPSHOT_FORMAT = 2        # 1: before the watch history and leases (still read)
# What a write with a lease that does not exist (any more) answers: it changed nothing.
LEASE_NOT_FOUND = txn.LEASE_NOT_FOUND
# Revisions of changes kept for watchers (serve --watch-history).
DEFAULT_WATCH_HISTORY = 100000
# Keys packed per turn of the event loop while a snapshot is built (a few ms each).
SNAPSHOT_SLICE = 4096


class KvItem(NamedTuple):
    key: str
    value: str
    revision: int


class KvChange(NamedTuple):
    """One change, as a watcher sees it: `type` "put" or "delete"; `value` None for a delete;
    `prev_revision` the revision that wrote the key before (0: it was absent)."""
    revision: int
    type: str
    key: str
    value: Optional[str]
    prev_revision: int


class CompactedRevision(Exception):
    """The changes from `revision` on are no longer all kept (they are older than the watch
    history, or than the snapshot this node started from)."""

    def __init__(self, revision: int, compacted_revision: int) -> None:
        self.revision = revision
        self.compacted_revision = compacted_revision
        super().__init__(f"revision {revision} is compacted: changes are kept after revision {compacted_revision}")


class KvStateMachine(SnapshottingStateMachine):
    """Keys -> (value, revision), where a key's revision is the log index that last wrote it.

    Each key's (value, revision) is a tuple, never a list: a tuple of a str or bytes and an int
    is untracked by the cyclic garbage collector, so its full collections do not walk every
    key (a list per key made each one cost 100 ms at 300k keys, a stall that costs elections).

    With `snapshot_dir`, every snapshot (built here or installed from the leader) is saved
    there (SnapshotStore, fsync) before the node relies on it, and a new instance starts from
    the one found there: with a durable log this makes the state durable (the log replays the
    rest; `open_kv_storage` sets both up).
    Counters `snapshots_built` / `snapshots_installed` feed the service metrics.
    """

    def __init__(self, snapshot_dir=None, watch_history: int = DEFAULT_WATCH_HISTORY) -> None:
        if isinstance(watch_history, bool) or not isinstance(watch_history, int) or watch_history < 0:
            raise InvalidArgument(f"watch_history must be an integer >= 0, got {watch_history!r}")
        self.data: Dict[str, Tuple[Any, int]] = {}    # key -> (value, revision)
        self._sorted: Optional[List[str]] = None      # sorted keys, rebuilt after the key set changes
        self.watch_history = watch_history
        # The changes of the last `watch_history` revisions, oldest first, each a plain tuple
        # (revision, "put" | "delete", key, value, prev_revision): KvChange's fields, untracked
        # by the garbage collector.
        self.history: Deque[tuple] = deque()
        # Changes at revisions up to this one are gone (0: none yet). None: all up to the
        # current revision (restored from a snapshot that kept no history).
        self._compacted: Optional[int] = 0
        # Called after an apply that changed keys, with (the new changes, the revision), and
        # with (None, revision) when a snapshot replaced the whole state (kv.watch.WatchHub).
        self.change_listeners: List[Callable[[Optional[List[tuple]], int], None]] = []
        self.leases = LeaseTable()
        self.snapshots_built = 0
        self.snapshots_installed = 0
        super().__init__(snapshot_dir)                # loads the snapshot found there, if any
        if self.applied is not None:
            _log.info("kv state loaded from snapshot %s (%d keys)", self.applied, len(self.data))

    # ------------------------------------------------------------------ reads (local state)
    def get(self, key: str) -> Optional[KvItem]:
        v = self.data.get(key)
        return None if v is None else KvItem(key, v[0], v[1])

    def list(self, prefix: str = "", limit: Optional[int] = None) -> List[KvItem]:
        """Items whose key starts with `prefix`, in key order (at most `limit`)."""
        keys = self._sorted
        if keys is None:
            keys = self._sorted = sorted(self.data)
        i = bisect.bisect_left(keys, prefix)
        out: List[KvItem] = []
        data = self.data
        n = len(keys)
        while i < n and keys[i].startswith(prefix) and (limit is None or len(out) < limit):
            k = keys[i]
            v = data[k]
            out.append(KvItem(k, v[0], v[1]))
            i += 1
        return out

    def __len__(self) -> int:
        return len(self.data)

    # ------------------------------------------------------------------ history (watchers)
    @property
    def revision(self) -> int:
        """The state's revision: the index of the last entry applied (0: none)."""
        return 0 if self.applied is None else self.applied.index

    @property
    def compacted_revision(self) -> int:
        """Changes at revisions up to this one may be gone from `history`: a watcher can
        resume only from a revision above it."""
        return self.revision if self._compacted is None else self._compacted

    def changes(self, from_revision: int) -> List[KvChange]:
        """The changes at revisions >= from_revision, in order; CompactedRevision when some of
        them are no longer kept."""
        if from_revision <= self.compacted_revision:
            raise CompactedRevision(from_revision, self.compacted_revision)
        hist = self.history
        lo, hi = 0, len(hist)
        while lo < hi:                      # the first change at >= from_revision
            mid = (lo + hi) // 2
            if hist[mid][0] < from_revision:
                lo = mid + 1
            else:
                hi = mid
        return [KvChange(*hist[i]) for i in range(lo, len(hist))]

    def _set(self, key: str, value: Any, index: int, lease: int = 0) -> int:
        cur = self.data.get(key)
        if cur is None:
            self._sorted = None
        self.data[key] = (value, index)
        if lease or self.leases.of_key:
            self.leases.attach(key, lease)
        self.history.append((index, "put", key, value, 0 if cur is None else cur[1]))
        return index

    def _remove(self, key: str, index: int) -> int:
        cur = self.data.pop(key, None)
        if cur is None:
            return 0
        self._sorted = None
        if self.leases.of_key:
            self.leases.detach(key)
        self.history.append((index, "delete", key, None, cur[1]))
        return 1

    def _revoke(self, leases: List[Any], index: int) -> Tuple[int, int, int]:
        """(revision, leases revoked, keys deleted): the leases that exist, and their keys."""
        revoked = deleted = 0
        for lease in leases:
            if lease in self.leases:
                revoked += 1
                for key in self.leases.revoke(lease):
                    deleted += self._remove(key, index)
        return index, revoked, deleted

    def _remove_prefix(self, prefix: str, index: int) -> int:
        keys = [item.key for item in self.list(prefix)]
        for key in keys:
            self._remove(key, index)
        return len(keys)

    def _trim_history(self, index: int) -> None:
        """Keep the changes of the last `watch_history` revisions up to `index`."""
        floor = index - self.watch_history
        hist = self.history
        if hist and hist[0][0] <= floor:
            while hist and hist[0][0] <= floor:
                hist.popleft()
            if self._compacted is None or floor > self._compacted:
                self._compacted = floor
        elif self.watch_history == 0 and (self._compacted is None or index > self._compacted):
            self._compacted = index

    # ------------------------------------------------------------------ apply
    async def apply(self, entries: LogSlice) -> List[Any]:
        out: List[Any] = []
        append = out.append
        data = self.data
        unpack = msgpack.unpackb
        index = entries.start - 1
        changes_before = len(self.history)
        for payload, kind in zip(entries.payloads, entries.kinds):
            index += 1
            if kind != NORMAL:
                append(None)
                continue
            try:
                cmd = unpack(payload)
                op = cmd[0]
                n = len(cmd)
            except Exception:
                append(None)
                continue
            if op == TXN:
                append(self._txn(cmd, index) if txn.well_formed(cmd) else None)
                continue
            if op == LEASE_GRANT:
                ttl = cmd[1] if n == 2 else 0
                if type(ttl) in (int, float) and ttl > 0:
                    self.leases.grant(index, ttl)
                    append((index, ttl))
                else:
                    append(None)
                continue
            if op == LEASE_REVOKE:
                ids = cmd[1] if n == 2 else None
                append(self._revoke(ids, index) if type(ids) is list and all(type(i) is int for i in ids) else None)
                continue
            key = cmd[1] if n > 1 else None
            if type(key) is not str:
                append(None)
            elif op == PUT and n == 3:
                append(self._set(key, cmd[2], index))
            elif op == PUT and n == 4 and type(cmd[3]) is int:
                # With a lease: refused (nothing changes) when the lease does not exist.
                append(self._set(key, cmd[2], index, cmd[3]) if cmd[3] in self.leases else LEASE_NOT_FOUND)
            elif op == DELETE and n == 2:
                append((index, self._remove(key, index) == 1))
            elif op == CAS_VALUE and n == 4:
                cur = data.get(key)
                if (cur is None and cmd[2] is None) or (cur is not None and cur[0] == cmd[2]):
                    append((True, self._set(key, cmd[3], index), None))
                else:
                    append((False, 0 if cur is None else cur[1], None if cur is None else cur[0]))
            elif op == CAS_REVISION and n == 4:
                cur = data.get(key)
                if (0 if cur is None else cur[1]) == cmd[2]:
                    append((True, self._set(key, cmd[3], index), None))
                else:
                    append((False, 0 if cur is None else cur[1], None if cur is None else cur[0]))
            elif op == DELETE_RANGE and n == 2 and key:
                append((index, self._remove_prefix(key, index)))
            else:
                append(None)
        self.record_applied(entries)
        if self.change_listeners and len(self.history) > changes_before:
            new = list(itertools.islice(self.history, changes_before, None))
            for listener in self.change_listeners:
                listener(new, index)
        self._trim_history(index)
        return out

    def _txn(self, cmd: List[Any], index: int) -> Any:
        """(succeeded, revision, results) of a well-formed TXN entry (kv.txn)."""
        data = self.data
        succeeded = all(txn.holds(data, c) for c in cmd[1])
        ops = cmd[2] if succeeded else cmd[3]
        for op in ops:
            if op[0] == txn.OP_PUT and len(op) == 4 and op[3] not in self.leases:
                return LEASE_NOT_FOUND        # refused whole, before any op runs
        results: List[Any] = []
        for op in ops:
            code = op[0]
            if code == txn.OP_PUT:
                results.append(self._set(op[1], op[2], index, op[3] if len(op) == 4 else 0))
            elif code == txn.OP_DELETE:
                results.append(self._remove(op[1], index))
            elif code == txn.OP_DELETE_RANGE:
                results.append(self._remove_prefix(op[1], index))
            else:
                cur = data.get(op[1])
                results.append(None if cur is None else (cur[0], cur[1]))
        return succeeded, index, results

    # ------------------------------------------------------------------ snapshots
    async def serialize_async(self) -> bytes:
        """`[SNAPSHOT_FORMAT, [[key, value, revision], ...], compacted_revision, [change, ...],
        [[lease, ttl, [key, ...]], ...]]` in msgpack (a change: [revision, type, key, value,
        prev_revision]), packed
        SNAPSHOT_SLICE keys at a time with the event loop let run in between: packing a few
        hundred thousand keys in one go blocks it for longer than a heartbeat interval, and
        when every node snapshots at once (they reach the policy together) the leader misses
        its quorum. The state is fixed first: the items and changes are taken before any
        await, and a write replaces a key's (value, revision) tuple rather than changing it."""
        items = list(self.data.items())
        history = list(self.history)
        compacted = self.compacted_revision
        leases = self.leases.dump()
        packer = msgpack.Packer()
        pack = packer.pack
        parts = [packer.pack_array_header(5), pack(SNAPSHOT_FORMAT), packer.pack_array_header(len(items))]
        for i in range(0, len(items), SNAPSHOT_SLICE):
            parts.extend([pack([k, v[0], v[1]]) for k, v in items[i:i + SNAPSHOT_SLICE]])
            await asyncio.sleep(0)
        parts.append(pack(compacted))
        parts.append(packer.pack_array_header(len(history)))
        for i in range(0, len(history), SNAPSHOT_SLICE):
            parts.extend([pack(c) for c in history[i:i + SNAPSHOT_SLICE]])
            await asyncio.sleep(0)
        parts.append(pack(leases))
        return b"".join(parts)

    def restore(self, data: bytes) -> None:
        snap: Any = msgpack.unpackb(data) if data else [SNAPSHOT_FORMAT, [], None, [], []]
        fmt = snap[0]
        if fmt == 1:            # before watch history and leases
            snap = [fmt, snap[1], None, [], []]
        elif fmt != SNAPSHOT_FORMAT or len(snap) != 5:
            raise StorageError(f"unknown KV snapshot format {fmt!r}")
        _, items, compacted, history, leases = snap
        self.leases.load(leases)
        self.data = {k: (v, rev) for k, v, rev in items}
        self._sorted = None
        self.history = deque(tuple(c) for c in history)
        self._compacted = compacted

    async def build_snapshot(self) -> Snapshot:
        snap = await super().build_snapshot()
        self.snapshots_built += 1
        _log.info("kv snapshot built up to %s (%d keys)", snap.meta.last_log_id, len(self.data))
        return snap

    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        await super().install_snapshot(meta, data)
        self.snapshots_installed += 1
        for listener in self.change_listeners:
            listener(None, self.revision)
        _log.info("kv snapshot installed up to %s (%d keys)", meta.last_log_id, len(self.data))


def open_kv_storage(path, *, watch_history: int = DEFAULT_WATCH_HISTORY,
                    **wal_options) -> Tuple[WalLogStore, KvStateMachine]:
    """A KV node's durable storage in `path`, laid out as `open_storage` does (log/, snapshot/):
    (log store, state machine). Close the log store after `raft.shutdown()`."""
    path = os.fspath(path)
    log_store = WalLogStore(os.path.join(path, "log"), **wal_options)
    try:
        return log_store, KvStateMachine(os.path.join(path, "snapshot"), watch_history)
    except BaseException:
        log_store.close_now()
        raise
