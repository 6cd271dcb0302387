"""In-flight window of one replication stream: messages sent and not yet acked, bounded by
count and by bytes. Message ids grow by one per message; an id outside the window is stale."""
from typing import List, Tuple
from typing_extensions import disjoint_base


@disjoint_base
class Inflights:
    def __init__(self, max_count: int, max_bytes: int = ...) -> None: ...
    @property
    def count(self) -> int: ...
    @property
    def max_count(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def bytes(self) -> int:
        """Payload bytes in flight."""
    @property
    def full(self) -> bool: ...
    def add(self, msg_id: int, end_index: int, nbytes: int = 0) -> None:
        """Raises OverflowError when full, ValueError when msg_id is not above the last one."""
    def free_to(self, msg_id: int) -> int:
        """Free every message up to `msg_id`: the number freed, or -1 for a stale id."""
    def reset(self) -> None: ...
    def items(self) -> List[Tuple[int, int, int]]:
        """[(msg_id, end_index, nbytes)], oldest first."""
    def __len__(self) -> int: ...
