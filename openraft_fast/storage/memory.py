"""In-memory stores: for tests, benchmarks and nodes whose durability comes from replicas; the
state machines keep their snapshots on disk when given a directory (durable with a WalLogStore)."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional, Tuple

import msgpack

from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import MEMBERSHIP, LogId, Membership, Vote
from openraft_fast.storage.base import LogState, LogStore, Snapshot, StateMachine
from openraft_fast.storage.snapshot_store import SnapshotStore


class MemLogStore(LogStore):
    """The log in a LogBuffer; everything is "durable" at once. A node restarted in the same
    process from the same MemLogStore sees all it wrote."""

    def __init__(self) -> None:
        self.log = LogBuffer()
        self.vote: Optional[Vote] = None
        self.committed: Optional[LogId] = None

    async def get_log_state(self) -> LogState:
        return LogState(self.log.purged, self.log.last_log_id)

    async def save_vote(self, vote: Vote) -> None:
        self.vote = vote

    async def read_vote(self) -> Optional[Vote]:
        return self.vote

    def save_committed(self, log_id: LogId) -> None:
        self.committed = log_id

    async def read_committed(self) -> Optional[LogId]:
        return self.committed

    def append(self, entries: LogSlice, on_flushed: Callable[[], None]) -> None:
        self.log.append_slice(entries)
        on_flushed()

    async def truncate_after(self, index: int) -> None:
        self.log.truncate_after(index)

    async def purge(self, upto: LogId) -> None:
        if upto.index > self.log.last_index:
            self.log.reset(upto)
        else:
            self.log.purge_upto(upto.index)

    async def get_log_entries(self, start: int, stop: int) -> LogSlice:
        return self.log.slice(start, stop)

    async def read_log(self) -> LogBuffer:
        copy = LogBuffer(self.log.purged)
        if len(self.log):
            copy.append_slice(self.log.slice(self.log.first_index, self.log.last_index + 1))
        return copy


class _MemStateMachineBase(StateMachine):
    """State in memory. With `snapshot_dir`, durable through its snapshots: every snapshot it
    builds or installs is saved there (SnapshotStore) before the call returns, and on open it
    loads the current one. After a restart the node's state is that snapshot plus the committed
    log after it, which the runtime replays. Only the current snapshot's meta stays in memory;
    its bytes are read from disk when a follower needs them."""

    def __init__(self, snapshot_dir=None) -> None:
        self.applied: Optional[LogId] = None
        self.last_membership: Optional[Tuple[Optional[LogId], Any]] = None
        self.snapshot: Optional[Snapshot] = None
        self._snapshot_seq = 0
        self.snapshot_store: Optional[SnapshotStore] = None
        self._snapshot_meta: Optional[SnapshotMeta] = None
        if snapshot_dir is not None:
            self.snapshot_store = SnapshotStore(snapshot_dir)
            snap = self.snapshot_store.load()
            if snap is not None:
                self._set_state(snap.meta, snap.data)
                self._snapshot_meta = snap.meta
                seq = snap.meta.snapshot_id.rpartition("-")[2]
                self._snapshot_seq = int(seq) if seq.isdigit() else 0

    async def applied_state(self):
        return self.applied, self.last_membership

    def _note_memberships(self, entries: LogSlice) -> None:
        kinds = entries.kinds
        if MEMBERSHIP in kinds:
            i = kinds.rindex(MEMBERSHIP)
            self.last_membership = (entries.log_id_at(entries.start + i), entries.payloads[i])

    def _state_bytes(self) -> bytes:
        return b""

    async def _snapshot_bytes(self) -> bytes:
        """The state as it is when called (before any await), as snapshot bytes. A large state
        overrides this to pack in slices and let the event loop run between them."""
        return self._state_bytes()

    def _load_state(self, data: bytes) -> None:
        pass

    def _set_state(self, meta: SnapshotMeta, data) -> None:
        self._load_state(data)
        self.applied = meta.last_log_id
        self.last_membership = (meta.membership_log_id, meta.membership) if meta.membership is not None else None

    async def build_snapshot(self) -> Snapshot:
        self._snapshot_seq += 1
        mid, m = self.last_membership if self.last_membership else (None, None)
        last = self.applied
        meta = SnapshotMeta(last, mid, m, f"{last}-{self._snapshot_seq}")
        snap = Snapshot(meta, await self._snapshot_bytes())
        if self.snapshot_store is not None:
            await asyncio.to_thread(self.snapshot_store.save, meta, snap.data)
            self._snapshot_meta = meta
        else:
            self.snapshot = snap
        return snap

    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        if self.snapshot_store is not None:
            # On disk first: the state in memory is never ahead of what a restart finds.
            await asyncio.to_thread(self.snapshot_store.save, meta, data)
            self._snapshot_meta = meta
        else:
            self.snapshot = Snapshot(meta, data)
        self._set_state(meta, data)

    async def get_current_snapshot(self) -> Optional[Snapshot]:
        if self.snapshot_store is None or self._snapshot_meta is None:
            return self.snapshot
        return await asyncio.to_thread(self.snapshot_store.load)


class NoopStateMachine(_MemStateMachineBase):
    """Applies nothing, answers None: the benchmark state machine."""

    async def apply(self, entries: LogSlice) -> List[Any]:
        self._note_memberships(entries)
        self.applied = entries.last_log_id
        return [None] * len(entries)


class MemStateMachine(_MemStateMachineBase):
    """A dict key-value store. An application entry is msgpack of [key, value] (set; answers
    the previous value) or [key] (delete; answers the removed value); any other payload is
    kept in `self.other` and answered with None. With `snapshot_dir` its snapshots are kept
    on disk (see _MemStateMachineBase; `open_storage` sets it up)."""

    def __init__(self, snapshot_dir=None) -> None:
        self.data: Dict[Any, Any] = {}
        self.other: List[Any] = []
        super().__init__(snapshot_dir)

    async def apply(self, entries: LogSlice) -> List[Any]:
        out: List[Any] = []
        data = self.data
        for payload, kind in zip(entries.payloads, entries.kinds):
            if kind != 0:
                out.append(None)
                continue
            try:
                cmd = msgpack.unpackb(payload, use_list=True) if isinstance(payload, (bytes, bytearray)) else None
            except Exception:
                cmd = None
            if isinstance(cmd, list) and len(cmd) == 2:
                out.append(data.get(_key(cmd[0])))
                data[_key(cmd[0])] = cmd[1]
            elif isinstance(cmd, list) and len(cmd) == 1:
                out.append(data.pop(_key(cmd[0]), None))
            else:
                self.other.append(payload)
                out.append(None)
        self._note_memberships(entries)
        self.applied = entries.last_log_id
        return out

    def _state_bytes(self) -> bytes:
        return msgpack.packb([list(self.data.items()), self.other], use_bin_type=True)

    def _load_state(self, data: bytes) -> None:
        items, other = msgpack.unpackb(data, use_list=True) if data else ([], [])
        self.data = {_key(k): v for k, v in items}
        self.other = other


def _key(k):
    return tuple(k) if isinstance(k, list) else k
