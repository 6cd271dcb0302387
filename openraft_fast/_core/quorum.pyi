"""Quorum sets: majority, weighted, joint, hierarchical and flexible read/write pairs.

Every voter has a slot (its position in `ids`); `committed_index` is the largest index that
some write quorum has all reached; `vote_result` decides an election on the read quorum.
`safe` tells whether every read quorum intersects every write quorum.
"""
import enum
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union
from typing_extensions import disjoint_base

MAX_FLEXIBLE_VOTERS: int   # intersection checks enumerate 2**n voter subsets


class VoteResult(enum.IntEnum):
    PENDING = 0
    WON = 1
    LOST = 2


@disjoint_base
class QuorumSet:
    """Abstract base; use Majority, Weighted, Joint, Hierarchical or Flexible."""
    @property
    def ids(self) -> Tuple[int, ...]:
        """Every voter of the tree, in slot order."""
    @property
    def safe(self) -> bool:
        """Every read quorum intersects every write quorum."""
    def slot_of(self, node_id: int) -> int:
        """The slot of a voter, or -1 for an id that is not a voter here."""
    def is_quorum(self, ids: Iterable[int]) -> bool:
        """Whether `ids` form a write quorum (ids that are not voters are ignored)."""
    def is_read_quorum(self, ids: Iterable[int]) -> bool:
        """Whether `ids` form a read (election) quorum."""
    def vote_result(self, granted: Iterable[int], rejected: Iterable[int] = ()) -> VoteResult: ...
    def committed_index(self, matched: Union[Dict[int, int], Iterable[int]]) -> int:
        """`matched`: a dict {voter id: index} (missing voters count as 0) or indexes in
        slot order."""
    def __len__(self) -> int: ...
    def __contains__(self, node_id: object, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...


@disjoint_base
class Majority(QuorumSet):
    """More than half of `members`."""
    def __init__(self, members: Iterable[int]) -> None: ...
    @property
    def members(self) -> Tuple[int, ...]: ...


@disjoint_base
class Weighted(QuorumSet):
    """A quorum holds at least `threshold` weight (default: more than half of the total)."""
    def __init__(self, weights: Mapping[int, int], threshold: Optional[int] = None) -> None: ...
    @property
    def weights(self) -> Dict[int, int]: ...
    @property
    def threshold(self) -> int: ...


@disjoint_base
class Joint(QuorumSet):
    """A quorum of every child (joint consensus)."""
    def __init__(self, children: Iterable[QuorumSet]) -> None: ...
    @property
    def children(self) -> Tuple[QuorumSet, ...]: ...


@disjoint_base
class Hierarchical(QuorumSet):
    """A quorum of at least `need` children (default: a majority of them)."""
    def __init__(self, children: Iterable[QuorumSet], need: Optional[int] = None) -> None: ...
    @property
    def children(self) -> Tuple[QuorumSet, ...]: ...
    @property
    def need(self) -> int: ...


@disjoint_base
class Flexible(QuorumSet):
    """Distinct read (election) and write (commit) quorums; raises ValueError naming a disjoint
    pair when some read quorum misses some write quorum."""
    def __init__(self, read: QuorumSet, write: QuorumSet) -> None: ...
    @property
    def read(self) -> QuorumSet: ...
    @property
    def write(self) -> QuorumSet: ...


def from_configs(configs: Iterable[Iterable[int]]) -> QuorumSet:
    """Majority for one voter set, Joint of Majorities for several."""
