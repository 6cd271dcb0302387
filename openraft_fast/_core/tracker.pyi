"""The leader's view of every target: a Progress per target plus the quorum-accepted index."""
from typing import Dict, Iterable, Optional
from typing_extensions import disjoint_base

from openraft_fast._core.progress import Progress
from openraft_fast._core.quorum import QuorumSet


@disjoint_base
class ProgressTracker:
    def __init__(self, quorum: QuorumSet, self_id: int, targets: Iterable[int], last_index: int,
                 max_inflight: int = 64, max_inflight_bytes: int = ...,
                 previous: Optional[ProgressTracker] = None, self_matched: int = 0) -> None:
        """Progress for every id in `targets` (self is skipped); with `previous`, targets it
        tracked keep their Progress and matched index."""
    @property
    def quorum(self) -> QuorumSet: ...
    @property
    def self_id(self) -> int: ...
    @property
    def self_slot(self) -> int:
        """-1 when the leader is not a voter."""
    @property
    def progress(self) -> Dict[int, Progress]:
        """Target id -> Progress (every target but self)."""
    @property
    def accepted(self) -> int:
        """Largest index a write quorum has reached."""
    def ack(self, node_id: int, seq: int, sent_at: int) -> None: ...
    def quorum_seq(self, self_seq: int) -> int: ...
    def quorum_time(self, self_time: int) -> int: ...
    def update(self, node_id: int, index: int) -> int:
        """Raise node_id's matched index; returns the quorum-accepted index."""
    def matched(self, node_id: int) -> Optional[int]: ...
    def __getitem__(self, node_id: int, /) -> Progress: ...
    def __contains__(self, node_id: object, /) -> bool: ...
