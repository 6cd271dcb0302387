"""Storage contracts: the log store and the state machine.

A storage method that raises is fatal for the node: the runtime stops it cleanly with a
StorageError naming the failed call. It never guesses or retries around a broken store.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import LogId, Membership, Vote


class LogState(NamedTuple):
    last_purged_log_id: Optional[LogId]
    last_log_id: Optional[LogId]


class Snapshot(NamedTuple):
    meta: SnapshotMeta
    data: bytes


class LogStore(ABC):
    """The Raft log and the vote. Indexes start at 1; the log never has a hole."""

    @abstractmethod
    async def get_log_state(self) -> LogState: ...

    @abstractmethod
    async def save_vote(self, vote: Vote) -> None:
        """Durable before it returns."""

    @abstractmethod
    async def read_vote(self) -> Optional[Vote]: ...

    def save_committed(self, log_id: LogId) -> None:
        """Optional: remember the committed log id (may be lazy; never blocks the caller)."""

    async def read_committed(self) -> Optional[LogId]:
        return None

    def set_error_handler(self, callback: Callable[[BaseException], None]) -> None:
        """Optional: the runtime registers `callback` when a node starts on this store. A store
        that makes entries durable in the background (group commit) and fails there calls
        `callback(StorageError(...))` from the event loop's thread; it then never calls the
        pending `on_flushed` callbacks, and the node stops at once. The default ignores it: a
        store that fails only inside its own calls raises from them instead."""

    @abstractmethod
    def append(self, entries: LogSlice, on_flushed: Callable[[], None]) -> None:
        """Append entries right after the last one. They are readable on return; call
        `on_flushed()` from the event loop's thread once they are durable (at once for a
        memory store; after a group fsync for a durable one)."""

    @abstractmethod
    async def truncate_after(self, index: int) -> None:
        """Drop every entry after `index` (from the tail); durable before it returns."""

    @abstractmethod
    async def purge(self, upto: LogId) -> None:
        """Drop every entry up to `upto.index` (from the head) and remember `upto` as the last
        purged log id. `upto` may lie past the last entry (after a snapshot install)."""

    @abstractmethod
    async def get_log_entries(self, start: int, stop: int) -> LogSlice:
        """Entries [start, stop)."""

    async def read_log(self) -> LogBuffer:
        """The whole stored log, for a restart (override for a faster path)."""
        state = await self.get_log_state()
        buf = LogBuffer(state.last_purged_log_id)
        if state.last_log_id is not None and state.last_log_id.index >= buf.first_index:
            buf.append_slice(await self.get_log_entries(buf.first_index, state.last_log_id.index + 1))
        return buf


class StateMachine(ABC):
    """The application's state, fed committed entries in order."""

    @abstractmethod
    async def applied_state(self) -> Tuple[Optional[LogId], Optional[Tuple[LogId, Membership]]]:
        """(last applied log id, (log id, membership) of the last applied membership entry)."""

    @abstractmethod
    async def apply(self, entries: LogSlice) -> List[Any]:
        """Apply committed entries in order; one response per entry (None for blank and
        membership entries). Membership entries must be remembered for applied_state()."""

    @abstractmethod
    async def build_snapshot(self) -> Snapshot:
        """A snapshot of everything applied so far."""

    @abstractmethod
    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """Replace the whole state with the snapshot."""

    @abstractmethod
    async def get_current_snapshot(self) -> Optional[Snapshot]: ...
