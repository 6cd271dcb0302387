"""SnapshottingStateMachine: a state machine that keeps its state in memory and is durable
through its snapshots; subclasses write only the application's part."""
from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Any, List, Optional, Tuple

from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import MEMBERSHIP, NORMAL, LogId, Membership
from openraft_fast.storage.base import Snapshot, StateMachine
from openraft_fast.storage.snapshot_store import SnapshotStore


class SnapshottingStateMachine(StateMachine):
    """The StateMachine plumbing, once: the applied log id, the last membership, snapshot
    metas and ids, and (with `snapshot_dir`) keeping the current snapshot on disk and loading
    it again on open. A subclass holds the application's state and implements:

    - `apply_command(index, payload)`: apply one NORMAL entry (its log index and the bytes a
      client wrote) and return its response (an `ApplyError` refuses just that entry). Blank
      and membership entries never reach it: the base answers them None and records them.
    - `serialize() -> bytes`: the whole state, as it is now, as snapshot bytes; or
      `serialize_async()` for a large state packed in slices (see there).
    - `restore(data)`: replace the whole state with one `serialize` made.

    Set up the empty state first, then call `super().__init__(snapshot_dir)`: with a
    directory it loads the snapshot saved there (through `restore`) and reports it from
    `applied_state()` and `get_current_snapshot()`; the node then replays the committed log
    after it. Every snapshot built or installed is saved there (`SnapshotStore`: a temporary
    file, fsync, an atomic rename) before the call returns. Without a directory the current
    snapshot is kept in memory, and a restart starts from nothing (pair it with MemLogStore).

    For batch work (less Python per entry), override `apply(entries)` instead of
    `apply_command`: answer one response per entry (None for non-NORMAL kinds) and call
    `self.record_applied(entries)` at the end.

    `applied` (the last applied LogId) and `last_membership` ((LogId, Membership) or None) are
    readable; `snapshot_store` is the SnapshotStore, or None in memory.
    """

    def __init__(self, snapshot_dir=None) -> None:
        self.applied: Optional[LogId] = None
        self.last_membership: Optional[Tuple[Optional[LogId], Membership]] = None
        self.snapshot_store: Optional[SnapshotStore] = None
        self._snapshot: Optional[Snapshot] = None            # in memory: the current snapshot
        self._snapshot_meta: Optional[SnapshotMeta] = None   # on disk: its meta (the bytes stay there)
        self._builds = 0                                     # snapshots built here, for their ids
        if snapshot_dir is not None:
            self.snapshot_store = SnapshotStore(snapshot_dir)
            snap = self.snapshot_store.load()
            if snap is not None:
                self._take_state(snap.meta, snap.data)
                self._snapshot_meta = snap.meta
                # Ids go on from the loaded one's counter, so a build after a restart gets a new id.
                seq = snap.meta.snapshot_id.rpartition("-")[2]
                self._builds = int(seq) if seq.isdigit() else 0

    # ------------------------------------------------------------------ the subclass's part
    def apply_command(self, index: int, payload: bytes) -> Any:
        """Apply the NORMAL entry at log `index` (`payload`: the bytes the client wrote) and
        return its response. Deterministic: every replica gets the same entries. Return an
        `ApplyError` (change nothing) to refuse this entry; raising is fatal for the node."""
        raise NotImplementedError(f"{type(self).__name__}: override apply_command() or apply()")

    def serialize(self) -> bytes:
        """The whole application state, as it is now, as snapshot bytes."""
        raise NotImplementedError(f"{type(self).__name__}: override serialize() or serialize_async()")

    async def serialize_async(self) -> bytes:
        """The snapshot bytes of the state as it is when called. Override to pack a large state
        in slices with `await asyncio.sleep(0)` between them: the apply queue waits meanwhile,
        but heartbeats and votes go on. Fix the state before the first await (take the items;
        apply may run between slices when called outside the runtime). Default: serialize()."""
        return self.serialize()

    @abstractmethod
    def restore(self, data: bytes) -> None:
        """Replace the whole application state with snapshot bytes made by `serialize` (here or
        on another node): on open, and when the leader's snapshot is installed."""

    # ------------------------------------------------------------------ StateMachine
    async def apply(self, entries: LogSlice) -> List[Any]:
        command = self.apply_command
        out = [command(index, payload) if kind == NORMAL else None
               for index, (kind, payload) in enumerate(zip(entries.kinds, entries.payloads), entries.start)]
        self.record_applied(entries)
        return out

    def record_applied(self, entries: LogSlice) -> None:
        """Record that `entries` are applied: the applied log id moves to their last one, and
        the last membership entry among them becomes `last_membership`. An `apply` override
        calls it once the entries are applied."""
        kinds = entries.kinds
        if MEMBERSHIP in kinds:
            i = kinds.rindex(MEMBERSHIP)
            self.last_membership = (entries.log_id_at(entries.start + i), entries.payloads[i])
        last = entries.last_log_id
        if last is not None:
            self.applied = last

    async def applied_state(self):
        return self.applied, self.last_membership

    async def build_snapshot(self) -> Snapshot:
        self._builds += 1
        mid, m = self.last_membership if self.last_membership else (None, None)
        last = self.applied
        meta = SnapshotMeta(last, mid, m, f"{last}-{self._builds}")
        snap = Snapshot(meta, await self.serialize_async())
        if self.snapshot_store is not None:
            await asyncio.to_thread(self.snapshot_store.save, meta, snap.data)
            self._snapshot_meta = meta
        else:
            self._snapshot = snap
        return snap

    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        if self.snapshot_store is not None:
            # On disk first: the state in memory is never ahead of what a restart finds.
            await asyncio.to_thread(self.snapshot_store.save, meta, data)
            self._snapshot_meta = meta
        else:
            self._snapshot = Snapshot(meta, data)
        self._take_state(meta, data)

    async def get_current_snapshot(self) -> Optional[Snapshot]:
        if self.snapshot_store is None or self._snapshot_meta is None:
            return self._snapshot
        return await asyncio.to_thread(self.snapshot_store.load)

    def _take_state(self, meta: SnapshotMeta, data) -> None:
        self.restore(data)
        self.applied = meta.last_log_id
        self.last_membership = (meta.membership_log_id, meta.membership) if meta.membership is not None else None
