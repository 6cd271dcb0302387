"""In-memory stores: for tests, benchmarks and nodes whose durability comes from replicas; the
state machines keep their snapshots on disk when given a directory (durable with a WalLogStore)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import msgpack

from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.types import LogId, Vote
from openraft_fast.storage.base import LogState, LogStore
from openraft_fast.storage.snapshotting import SnapshottingStateMachine


class MemLogStore(LogStore):
    """The log in a LogBuffer; everything is "durable" at once. A node restarted in the same
    process from the same MemLogStore sees all it wrote."""

    durable_on_append = True

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


class NoopStateMachine(SnapshottingStateMachine):
    """Applies nothing, answers None: the benchmark state machine."""

    async def apply(self, entries: LogSlice) -> List[Any]:
        self.record_applied(entries)
        return [None] * len(entries)

    def serialize(self) -> bytes:
        return b""

    def restore(self, data: bytes) -> None:
        pass


class MemStateMachine(SnapshottingStateMachine):
    """A dict key-value store. An application entry is msgpack of [key, value] (set; answers
    the previous value) or [key] (delete; answers the removed value): make them with
    `set_command` / `delete_command`. Any other payload is kept in `self.other` and answered
    with None. With `snapshot_dir` its snapshots are kept on disk (SnapshottingStateMachine;
    `open_storage` sets it up)."""

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
        self.record_applied(entries)
        return out

    @staticmethod
    def set_command(key, value) -> bytes:
        """The payload that sets `key` to `value`: msgpack [key, value]. Keys and values are
        any msgpack-able values (a list or tuple key is kept as a tuple). Its response is the
        previous value (None if there was none)."""
        return msgpack.packb([key, value], use_bin_type=True)

    @staticmethod
    def delete_command(key) -> bytes:
        """The payload that deletes `key`: msgpack [key]. Its response is the removed value
        (None if there was none)."""
        return msgpack.packb([key], use_bin_type=True)

    def serialize(self) -> bytes:
        return msgpack.packb([list(self.data.items()), self.other], use_bin_type=True)

    def restore(self, data: bytes) -> None:
        items, other = msgpack.unpackb(data, use_list=True) if data else ([], [])
        self.data = {_key(k): v for k, v in items}
        self.other = other


def _key(k):
    return tuple(k) if isinstance(k, list) else k
