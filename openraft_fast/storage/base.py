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

    #: True when `append` returns only once the entries are durable (a memory store, or one
    #: that writes and syncs inline). The engine then counts them flushed when it asks for
    #: the append: one event fewer per append on every node. `on_flushed` is still called
    #: (the runtime passes one that does nothing).
    durable_on_append: bool = False

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
        memory store; after a group fsync for a durable one). A store with
        `durable_on_append` is durable when this returns."""

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
    """The application's state, fed committed entries in order.

    The runtime calls it from one asyncio task at a time (the node's apply queue): `apply`,
    `build_snapshot` and `install_snapshot` run strictly in the order they were queued, each
    after the previous one has returned, so `apply` never overlaps a snapshot build or install.
    A call that awaits holds the queue back: entries committed meanwhile wait (replication and
    acknowledgements go on), so a large state should be packed cheaply or in slices that let
    the event loop run (`SnapshottingStateMachine.serialize_async`). `applied_state` and
    `get_current_snapshot` are read when the node starts (`Raft.start`), and
    `get_current_snapshot` again whenever a follower needs the snapshot; they may run while the
    queue works and must answer from what is already done.

    Durability and restarts. A node starts from `applied_state()` and `get_current_snapshot()`:
    the runtime replays the committed log after the later of the applied log id and the
    snapshot's last log id (the entries it knows are committed at once, the rest once a leader
    commits them again). A durable state machine therefore loads its current snapshot when it
    is created and reports it from both (it may also persist more than the snapshot; then
    `applied_state()` says how far). A state machine that forgets everything on a restart goes
    with a log store that does too (MemLogStore): the log is purged behind every snapshot, so
    a durable log cannot replay what a forgotten snapshot covered.

    Errors: an exception raised by `apply`, `build_snapshot` or `install_snapshot` is fatal
    for the node (it stops with a StorageError naming the call; see `apply` for refusing one
    entry instead). One raised by `applied_state` or `get_current_snapshot` when the node
    starts makes `Raft.start` raise StorageError; one raised by `get_current_snapshot` while
    a snapshot is sent fails that transfer, which the leader retries later.
    """

    @abstractmethod
    async def applied_state(self) -> Tuple[Optional[LogId], Optional[Tuple[LogId, Membership]]]:
        """`(last applied log id, (log id, membership) of the last applied membership entry)`:
        `(None, None)` for a state machine that has applied nothing and installed no snapshot.
        After `install_snapshot(meta, data)`: `(meta.last_log_id, (meta.membership_log_id,
        meta.membership))`, or `(meta.last_log_id, None)` when the meta has no membership."""

    @abstractmethod
    async def apply(self, entries: LogSlice) -> List[Any]:
        """Apply committed entries, in log order, and answer one response per entry.

        `entries` is a LogSlice: absolute indexes `entries.start` .. `entries.stop - 1`,
        `entries.kinds` (bytes, one kind a byte), `entries.payloads` (a list),
        `entries.log_id_at(index)` and `entries.last_log_id`. Walk it with::

            for index, (kind, payload) in enumerate(zip(entries.kinds, entries.payloads), entries.start):
                ...

        Kinds: NORMAL (the payload is the bytes a client wrote), BLANK (payload None: a new
        leader's first entry) and MEMBERSHIP (the payload is a Membership). Blank and
        membership entries get the response None, and still count: the applied log id moves to
        `entries.last_log_id`, and the last membership entry (its log id and Membership) must
        be remembered for `applied_state()` and for the meta of the next snapshot.

        Responses: a list of `len(entries)` items, in order; the writer of a NORMAL entry gets
        its response (`ClientWriteResponse.data`). An `openraft_fast.ApplyError` instance in
        an entry's slot refuses just that entry: it is still applied (its index is used and
        every replica must reach the same verdict), it must have changed nothing, and its
        writer gets the error. Any exception raised by `apply` is fatal for the node.

        Apply deterministically: every replica applies the same entries and must reach the
        same state and responses, whatever the batching."""

    @abstractmethod
    async def build_snapshot(self) -> Snapshot:
        """A snapshot of everything applied so far: `Snapshot(meta, data)` with
        `meta = SnapshotMeta(last applied log id, last membership log id, that Membership,
        snapshot_id)` and `data` the state as bytes. It becomes the current snapshot
        (`get_current_snapshot`), and must be durable before this returns: the runtime purges
        the log up to it (less `Config.max_in_snapshot_log_to_keep`) right after.

        `snapshot_id` is a string naming this snapshot, unique per build (e.g. the last log id
        and a counter). The runtime does not interpret it: it travels with the meta to the
        followers that install the snapshot and is kept with it, to tell snapshots apart in
        logs and tools. (A transfer over TCP is matched by the leader's message id, not by it.)"""

    @abstractmethod
    async def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """Replace the whole state with a snapshot the leader sent (`data` as one
        `build_snapshot` made it, bytes-like): afterwards `applied_state()` reports the meta's
        log ids and `get_current_snapshot()` returns `(meta, data)`. Durable before it returns:
        the runtime then drops the log the snapshot covers and acknowledges the leader."""

    @abstractmethod
    async def get_current_snapshot(self) -> Optional[Snapshot]:
        """The last snapshot built or installed (the one loaded on open, for a durable state
        machine), or None. Read on start and whenever a follower needs the snapshot; may run
        while the apply queue works."""
