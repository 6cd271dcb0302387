"""KvStateMachine: the replicated key-value state (see `commands` for what entries hold)."""
from __future__ import annotations

import asyncio
import bisect
import logging
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import msgpack

from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import NORMAL
from openraft_fast.kv.commands import CAS_REVISION, CAS_VALUE, DELETE, PUT
from openraft_fast.errors import StorageError
from openraft_fast.storage.base import Snapshot
from openraft_fast.storage.snapshotting import SnapshottingStateMachine
from openraft_fast.storage.wal import WalLogStore

_log = logging.getLogger("openraft_fast.kv")

SNAPSHOT_FORMAT = 1
# Keys packed per turn of the event loop while a snapshot is built (a few ms each).
SNAPSHOT_SLICE = 4096


class KvItem(NamedTuple):
    key: str
    value: str
    revision: int


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

    def __init__(self, snapshot_dir=None) -> None:
        self.data: Dict[str, Tuple[Any, int]] = {}    # key -> (value, revision)
        self._sorted: Optional[List[str]] = None      # sorted keys, rebuilt after the key set changes
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
                data[key] = (cmd[2], index)
                append(index)
            elif op == DELETE and len(cmd) == 2:
                if cur is not None:
                    del data[key]
                    key_set_changed = True
                append((index, cur is not None))
            elif op == CAS_VALUE and len(cmd) == 4:
                if (cur is None and cmd[2] is None) or (cur is not None and cur[0] == cmd[2]):
                    key_set_changed = key_set_changed or cur is None
                    data[key] = (cmd[3], index)
                    append((True, index, None))
                else:
                    append((False, 0 if cur is None else cur[1], None if cur is None else cur[0]))
            elif op == CAS_REVISION and len(cmd) == 4:
                if (0 if cur is None else cur[1]) == cmd[2]:
                    key_set_changed = key_set_changed or cur is None
                    data[key] = (cmd[3], index)
                    append((True, index, None))
                else:
                    append((False, 0 if cur is None else cur[1], None if cur is None else cur[0]))
            else:
                append(None)
        if key_set_changed:
            self._sorted = None
        self.record_applied(entries)
        return out

    # ------------------------------------------------------------------ snapshots
    async def serialize_async(self) -> bytes:
        """`[SNAPSHOT_FORMAT, [[key, value, revision], ...]]` in msgpack, packed SNAPSHOT_SLICE
        keys at a time with the event loop let run in between: packing a few hundred thousand
        keys in one go blocks it for longer than a heartbeat interval, and when every node
        snapshots at once (they reach the policy together) the leader misses its quorum. The
        state is fixed first: the items are taken before any await, and a write replaces a
        key's (value, revision) tuple rather than changing it."""
        items = list(self.data.items())
        packer = msgpack.Packer()
        pack = packer.pack
        parts = [packer.pack_array_header(2), pack(SNAPSHOT_FORMAT), packer.pack_array_header(len(items))]
        for i in range(0, len(items), SNAPSHOT_SLICE):
            parts.extend([pack([k, v[0], v[1]]) for k, v in items[i:i + SNAPSHOT_SLICE]])
            await asyncio.sleep(0)
        return b"".join(parts)

    def restore(self, data: bytes) -> None:
        fmt, items = msgpack.unpackb(data) if data else (SNAPSHOT_FORMAT, [])
        if fmt != SNAPSHOT_FORMAT:
            raise StorageError(f"unknown KV snapshot format {fmt!r}")
        self.data = {k: (v, rev) for k, v, rev in items}
        self._sorted = None

    async def build_snapshot(self) -> Snapshot:
        snap = await super().build_snapshot()
        self.snapshots_built += 1
        _log.info("kv snapshot built up to %s (%d keys)", snap.meta.last_log_id, len(self.data))
        return snap

    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        await super().install_snapshot(meta, data)
        self.snapshots_installed += 1
        _log.info("kv snapshot installed up to %s (%d keys)", meta.last_log_id, len(self.data))


def open_kv_storage(path, **wal_options) -> Tuple[WalLogStore, KvStateMachine]:
    """A KV node's durable storage in `path`, laid out as `open_storage` does (log/, snapshot/):
    (log store, state machine). Close the log store after `raft.shutdown()`."""
    path = os.fspath(path)
    log_store = WalLogStore(os.path.join(path, "log"), **wal_options)
    try:
        return log_store, KvStateMachine(os.path.join(path, "snapshot"))
    except BaseException:
        log_store.close_now()
        raise
