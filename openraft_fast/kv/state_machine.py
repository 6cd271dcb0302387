"""KvStateMachine: the replicated key-value state (see `commands` for what entries hold)."""
from __future__ import annotations

import asyncio
import bisect
import logging
from typing import Any, Dict, List, NamedTuple, Optional

import msgpack

from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import NORMAL
from openraft_fast.kv.commands import CAS_REVISION, CAS_VALUE, DELETE, PUT
from openraft_fast.kv.snapshot_file import SnapshotFile
from openraft_fast.storage.base import Snapshot
from openraft_fast.storage.memory import _MemStateMachineBase

_log = logging.getLogger("openraft_fast.kv")

SNAPSHOT_FORMAT = 1


class KvItem(NamedTuple):
    key: str
    value: str
    revision: int


class KvStateMachine(_MemStateMachineBase):
    """Keys -> (value, revision), where a key's revision is the log index that last wrote it.

    With `snapshot_dir`, every snapshot (built here or installed from the leader) is written
    there (fsync) before the node relies on it, and a new instance starts from the one found
    there: with a durable log this makes the state durable (the log replays the rest).
    Counters `snapshots_built` / `snapshots_installed` feed the service metrics.
    """

    def __init__(self, snapshot_dir: Optional[str] = None) -> None:
        super().__init__()
        self.data: Dict[str, List[Any]] = {}          # key -> [value, revision]
        self._sorted: Optional[List[str]] = None      # sorted keys, rebuilt after the key set changes
        self.snapshots_built = 0
        self.snapshots_installed = 0
        self._file = SnapshotFile(snapshot_dir) if snapshot_dir is not None else None
        if self._file is not None:
            snap = self._file.load()
            if snap is not None:
                self._restore(snap.meta, snap.data)
                _log.info("kv state loaded from snapshot %s (%d keys)", snap.meta.last_log_id, len(self.data))

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

    # ------------------------------------------------------------------ apply
    async def apply(self, entries: LogSlice) -> List[Any]:
        out: List[Any] = []
        append = out.append
        data = self.data
        unpack = msgpack.unpackb
        index = entries.start - 1
        key_set_changed = False
        for payload, kind in zip(entries.payloads, entries.kinds):
            index += 1
            if kind != NORMAL:
                append(None)
                continue
            try:
                cmd = unpack(payload)
                op = cmd[0]
                key = cmd[1]
                if type(key) is not str:
                    raise TypeError("key")
            except Exception:
                append(None)
                continue
            cur = data.get(key)
            if op == PUT and len(cmd) == 3:
                if cur is None:
                    key_set_changed = True
                data[key] = [cmd[2], index]
                append(index)
            elif op == DELETE and len(cmd) == 2:
                if cur is not None:
                    del data[key]
                    key_set_changed = True
                append((index, cur is not None))
            elif op == CAS_VALUE and len(cmd) == 4:
                if (cur is None and cmd[2] is None) or (cur is not None and cur[0] == cmd[2]):
                    key_set_changed = key_set_changed or cur is None
                    data[key] = [cmd[3], index]
                    append((True, index, None))
                else:
                    append((False, 0 if cur is None else cur[1], None if cur is None else cur[0]))
            elif op == CAS_REVISION and len(cmd) == 4:
                if (0 if cur is None else cur[1]) == cmd[2]:
                    key_set_changed = key_set_changed or cur is None
                    data[key] = [cmd[3], index]
                    append((True, index, None))
                else:
                    append((False, 0 if cur is None else cur[1], None if cur is None else cur[0]))
            else:
                append(None)
        if key_set_changed:
            self._sorted = None
        self._note_memberships(entries)
        self.applied = entries.last_log_id
        return out

    # ------------------------------------------------------------------ snapshots
    def _state_bytes(self) -> bytes:
        return msgpack.packb([SNAPSHOT_FORMAT, [[k, v[0], v[1]] for k, v in self.data.items()]])

    def _load_state(self, data: bytes) -> None:
        fmt, items = msgpack.unpackb(data) if data else (SNAPSHOT_FORMAT, [])
        if fmt != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown KV snapshot format {fmt!r}")
        self.data = {k: [v, rev] for k, v, rev in items}
        self._sorted = None

    def _restore(self, meta: SnapshotMeta, data: bytes) -> None:
        self._load_state(data)
        self.applied = meta.last_log_id
        self.last_membership = (meta.membership_log_id, meta.membership) if meta.membership is not None else None
        self.snapshot = Snapshot(meta, data)

    async def _persist(self, snap: Snapshot) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.save, snap)

    async def build_snapshot(self) -> Snapshot:
        snap = await super().build_snapshot()
        await self._persist(snap)
        self.snapshots_built += 1
        _log.info("kv snapshot built up to %s (%d keys)", snap.meta.last_log_id, len(self.data))
        return snap

    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        self._restore(meta, data)
        await self._persist(self.snapshot)
        self.snapshots_installed += 1
        _log.info("kv snapshot installed up to %s (%d keys)", meta.last_log_id, len(self.data))
