"""The in-memory tail of the log, and slices of it (what an append-entries message carries).

Entries are kept as payloads, a kind byte each (types.NORMAL / BLANK / MEMBERSHIP) and leader-id
runs: ((first_index, LeaderId), ...), one run per leadership.
"""
from typing import Any, ClassVar, Iterable, List, Optional, Tuple
from typing_extensions import disjoint_base

from openraft_fast._core.types import Entry, LeaderId, LogId, Membership


@disjoint_base
class LogSlice:
    """Entries [start, stop) of a log."""
    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __init__(self, start: int, payloads: List[Any], kinds: Optional[bytes] = None,
                 runs: Optional[Iterable[Tuple[int, LeaderId]]] = None) -> None:
        """`kinds` defaults to all-normal; `runs` is required for a non-empty slice and its
        first run starts at `start`."""
    @staticmethod
    def from_entries(entries: Iterable[Entry]) -> LogSlice:
        """A slice from consecutive Entry objects (at least one)."""
    @property
    def start(self) -> int: ...
    @property
    def stop(self) -> int: ...
    @property
    def payloads(self) -> List[Any]: ...
    @property
    def kinds(self) -> bytes: ...
    @property
    def runs(self) -> Tuple[Tuple[int, LeaderId], ...]: ...
    @property
    def nbytes(self) -> int:
        """Payload bytes (bytes and bytearray payloads; others count 0)."""
    @property
    def last_log_id(self) -> Optional[LogId]: ...
    def leader_id_at(self, index: int) -> Optional[LeaderId]: ...
    def log_id_at(self, index: int) -> Optional[LogId]: ...
    def entries(self) -> List[Entry]:
        """The slice as Entry objects (one allocation per entry: not for the hot path)."""
    def __len__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...


@disjoint_base
class LogBuffer:
    def __init__(self, purged: Optional[LogId] = None) -> None:
        """An empty log; `purged` is the log id of the last entry already purged."""
    @property
    def first_index(self) -> int:
        """First entry held (purged index + 1)."""
    @property
    def last_index(self) -> int:
        """Last entry held; first_index - 1 when empty."""
    @property
    def purged(self) -> Optional[LogId]: ...
    @property
    def last_log_id(self) -> Optional[LogId]: ...
    def membership_entries(self, start: int, stop: int) -> List[Tuple[LogId, Membership]]: ...
    def append(self, leader: LeaderId, payloads: List[Any], kind: int = ...) -> int:
        """Append `payloads` as entries of `leader` and `kind`; returns the new last index."""
    def append_slice(self, s: LogSlice, from_index: Optional[int] = None) -> int:
        """Append s[from_index:] (default s.start), right after our last entry; returns the
        new last index."""
    def slice(self, start: int, stop: int) -> LogSlice:
        """Entries [start, stop); IndexError outside the log."""
    def nbytes(self, start: int, stop: int) -> int: ...
    def first_conflict(self, s: LogSlice) -> int:
        """The first index of `s` that we lack or hold from another leader; s.stop if none."""
    def truncate_after(self, index: int) -> None: ...
    def purge_upto(self, index: int) -> None: ...
    def reset(self, purged: Optional[LogId] = None) -> None:
        """Drop everything (a snapshot replaces the log); `purged` becomes the last log id."""
    def leader_id_at(self, index: int) -> Optional[LeaderId]: ...
    def log_id_at(self, index: int) -> Optional[LogId]: ...
    def payload_at(self, index: int) -> Any: ...
    def kind_at(self, index: int) -> int: ...
    def entries(self, start: int, stop: int) -> List[Entry]: ...
    def __len__(self) -> int: ...
