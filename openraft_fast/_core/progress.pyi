"""Replication progress of one target, as the leader sees it (see progress.pxd for states)."""
from typing import Literal, Tuple, Union
from typing_extensions import disjoint_base

from openraft_fast._core.inflight import Inflights

STATE_PROBE: int       # where the target's log matches ours is unknown
STATE_REPLICATE: int   # the match is known: stream entries
STATE_SNAPSHOT: int    # the target needs a snapshot; one is in flight
NOTHING: int
LOGS: int
NEED_SNAPSHOT: int


@disjoint_base
class Progress:
    def __init__(self, node_id: int, slot: int, last_index: int, max_inflight: int = 64,
                 max_inflight_bytes: int = ..., matched: int = 0) -> None: ...
    @property
    def node_id(self) -> int: ...
    @property
    def slot(self) -> int:
        """Voter slot in the quorum set; -1 for a learner."""
    @property
    def state(self) -> int: ...
    @property
    def state_name(self) -> str: ...
    @property
    def matched(self) -> int:
        """Last index known to match; 0 = none."""
    acked_at: int
    """Send time (engine clock, us) of the newest message the target answered; -1: none."""
    @property
    def next_index(self) -> int: ...
    @property
    def searching_end(self) -> int: ...
    @property
    def inflight(self) -> Inflights: ...
    @property
    def next_msg_id(self) -> int: ...
    @property
    def send_start(self) -> int: ...
    @property
    def send_end(self) -> int: ...
    def next_send(self, first_index: int, last_index: int, max_entries: int
                  ) -> Union[None, Tuple[Literal["logs"], int, int], Tuple[Literal["snapshot"]]]:
        """None, ("logs", start, end) or ("snapshot",)."""
    def sent(self, nbytes: int = 0) -> int:
        """Record the message next_send decided; returns its msg_id."""
    def on_ack(self, msg_id: int, matched: int) -> bool: ...
    def on_reject(self, msg_id: int, prev_index: int, hint_last: int = -1) -> bool: ...
    def begin_snapshot(self, snapshot_index: int) -> int: ...
    def on_snapshot(self, msg_id: int, snapshot_index: int, ok: bool = True) -> bool: ...
    def restart_probe(self, last_index: int) -> None: ...
