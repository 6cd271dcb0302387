"""The Raft engine: the whole protocol as a deterministic state machine with no I/O.

Every input is a method call; every method returns the list of Commands the runtime must
execute, in order (see commands.pyi for the execution contract). Time enters only through
tick(now) (seconds, any monotonic origin); randomness only through the injected rng.

Completion events the runtime must feed back:
- on_log_flushed(log_id) once an AppendLog is durable (log_id = last id of that AppendLog),
  unless the engine was made with sync_log=True (the log store is durable when append returns:
  each AppendLog counts as flushed when it is emitted);
- on_applied(log_id) once an Apply finished (log_id = last id of that Apply's entries);
- on_snapshot_built(meta) after BuildSnapshot; on_snapshot_installed(meta) after InstallSnapshot;
- on_snapshot_send_failed(target, msg_id) when a SendSnapshot could not be delivered.
Messages from other nodes enter through recv_*; the sender's node id comes from the transport.
"""
import random
from typing import Any, Dict, Iterable, List, Optional, Tuple
from typing_extensions import disjoint_base

from openraft_fast._core.commands import Command
from openraft_fast._core.log import LogBuffer
from openraft_fast._core.messages import (AppendRequest, AppendResponse, InstallSnapshotRequest,
                                          SnapshotMeta, SnapshotResponse, TimeoutNow, VoteRequest,
                                          VoteResponse)
from openraft_fast._core.progress import Progress
from openraft_fast._core.quorum import QuorumSet
from openraft_fast._core.tracker import ProgressTracker
from openraft_fast._core.types import LogId, Membership, Node, Vote
from openraft_fast.config import Config

# Engine.state
LEARNER: int
FOLLOWER: int
CANDIDATE: int
LEADER: int
NOT_MEMBER: int     # in no membership it holds, or told so by an up-to-date voter: never stands
STATE_NAMES: Dict[int, str]
# ensure_linearizable policies
READ_INDEX: int
LEASE_READ: int


@disjoint_base
class PersistedState:
    """What a node restarts from: exactly what its stores made durable."""
    vote: Optional[Vote]
    log: LogBuffer                 # the durable log (purged log id + entries); a new one if None
    committed: Optional[LogId]     # from SaveCommitted, if the store keeps it
    snapshot: Optional[SnapshotMeta]
    applied: Optional[LogId]       # the state machine's last applied log id
    applied_membership: Optional[Tuple[LogId, Membership]]   # last applied by the state machine

    def __init__(self, vote: Optional[Vote] = None, log: Optional[LogBuffer] = None,
                 committed: Optional[LogId] = None, snapshot: Optional[SnapshotMeta] = None,
                 applied: Optional[LogId] = None,
                 applied_membership: Optional[Tuple[LogId, Membership]] = None) -> None: ...


@disjoint_base
class Engine:
    def __init__(self, node_id: int, config: Config, state: PersistedState, rng: random.Random,
                 now: float = 0.0, *, sync_log: bool = False) -> None: ...
    def startup(self) -> List[Command]:
        """Call once after construction: repairs a log a snapshot passed, applies what is
        committed, and stands for election at once if the saved vote was its own leadership."""

    # Read-only state.
    @property
    def node_id(self) -> int: ...
    @property
    def config(self) -> Config: ...
    @property
    def state(self) -> int:
        """LEARNER / FOLLOWER / CANDIDATE / LEADER."""
    @property
    def state_name(self) -> str: ...
    @property
    def vote(self) -> Vote: ...
    @property
    def log(self) -> LogBuffer:
        """The engine's view of the log (appended, not necessarily flushed)."""
    @property
    def committed(self) -> Optional[LogId]: ...
    @property
    def applied(self) -> Optional[LogId]:
        """As reported by on_applied."""
    @property
    def flushed(self) -> Optional[LogId]: ...
    @property
    def sync_log(self) -> bool:
        """Made with sync_log=True: AppendLog counts as flushed when emitted."""
    @property
    def snapshot(self) -> Optional[SnapshotMeta]: ...
    @property
    def membership(self) -> Optional[Membership]:
        """Effective membership (the last appended one); None on a pristine node."""
    @property
    def membership_log_id(self) -> Optional[LogId]: ...
    @property
    def committed_membership(self) -> Optional[Membership]: ...
    @property
    def committed_membership_log_id(self) -> Optional[LogId]: ...
    @property
    def quorum(self) -> Optional[QuorumSet]:
        """The effective membership's quorum set (None without a membership)."""
    @property
    def tracker(self) -> Optional[ProgressTracker]:
        """Leader only."""
    @property
    def now(self) -> float: ...
    @property
    def next_deadline(self) -> float:
        """Seconds: call tick() no later than this."""
    @property
    def lease_valid_until(self) -> Optional[float]:
        """Leader: seconds until which its lease holds (None when it has none)."""
    @property
    def leader_id(self) -> Optional[int]: ...
    @property
    def last_log_id(self) -> Optional[LogId]: ...
    def leader_node(self) -> Optional[Node]: ...
    def is_leader(self) -> bool: ...
    def progress(self, target: int) -> Optional[Progress]: ...
    def replication_lag(self, target: int) -> Optional[int]:
        """Leader: entries `target` lacks (None when not leading or not a target)."""
    def has_acked(self, target: int) -> bool:
        """Leader: whether `target` has answered any of this leadership's appends."""
    def is_caught_up(self, target: int) -> bool:
        """Leader: the add-learner condition: `target` accepted an append and lags at most
        replication_lag_threshold entries."""
    def unhealthy(self, ids: Iterable[int]) -> List[int]:
        """Leader: the ids it has not heard an ack from within election_timeout_max (sorted)."""
    def hand_off_target(self) -> Optional[int]:
        """Leader: the most up-to-date voter heard from within election_timeout_max, or None."""
    def target_node(self, target: int) -> Optional[Node]:
        """The address of a member, or of a node a membership change is removing."""

    # Time and triggers.
    def tick(self, now: float) -> List[Command]: ...
    def elect(self) -> List[Command]:
        """Start an election now (pre-vote first when enabled); not inside a leader's lease."""
    def trigger_heartbeat(self) -> List[Command]: ...
    def trigger_snapshot(self) -> List[Command]: ...
    def purge_log(self, upto: int) -> List[Command]: ...
    def transfer_leader(self, to: int) -> List[Command]:
        """Raises ForwardToLeader on a non-leader, RaftError when `to` is not a voter."""

    # Client requests. These raise ForwardToLeader (errors.py) on a node that is not a leader
    # taking writes; the entries appended get indexes log.last_index + 1 ...
    def initialize(self, membership: Membership, elect: bool = True) -> List[Command]:
        """Raises InitializeError unless the node is pristine and a voter of `membership`.
        Stands for election at once, or with `elect=False` when its election timer fires."""
    def client_write(self, payloads: List[Any]) -> List[Command]: ...
    def change_membership(self, goal: Iterable[int], retain: bool = False,
                          nodes: Optional[Dict[int, Node]] = None, force: bool = False) -> List[Command]:
        """One step towards voter set `goal` (joint first, then uniform: call again once the
        returned step is committed). Raises ChangeMembershipError("in_progress" | "empty" |
        "learner_not_found" | "not_enough_healthy_voters": fewer than a quorum of `goal` healthy,
        unless `force`)."""
    def add_learner(self, node_id: int, node: Node) -> List[Command]: ...
    def remove_learner(self, node_id: int) -> List[Command]:
        """Append a membership without learner `node_id` (nothing for a node absent).
        ChangeMembershipError: "in_progress" (the last membership is not committed), "is_voter"
        (take it out of the voters with change_membership)."""
    def ensure_linearizable(self, req_ids: Any, policy: int = ...) -> List[Command]:
        """`req_ids`: one request id, or a list or tuple of them (one quorum round for all).
        Emits Reply(req_id, read_log_id, None) per id once the read is confirmed (READ_INDEX:
        after a quorum round; LEASE_READ: at once while the lease holds), or
        Reply(req_id, None, error). The caller then waits until applied >= read_log_id."""

    # Messages from other nodes.
    def recv_vote(self, from_id: int, req: VoteRequest) -> List[Command]: ...
    def recv_vote_response(self, from_id: int, resp: VoteResponse) -> List[Command]: ...
    def recv_append(self, from_id: int, req: AppendRequest) -> List[Command]: ...
    def recv_append_response(self, from_id: int, resp: AppendResponse) -> List[Command]: ...
    def recv_snapshot(self, from_id: int, req: InstallSnapshotRequest) -> List[Command]: ...
    def recv_snapshot_response(self, from_id: int, resp: SnapshotResponse) -> List[Command]: ...
    def recv_timeout_now(self, from_id: int, msg: TimeoutNow) -> List[Command]: ...

    # Completions.
    def on_log_flushed(self, log_id: LogId) -> List[Command]: ...
    def on_applied(self, log_id: LogId) -> List[Command]: ...
    def on_snapshot_built(self, meta: SnapshotMeta) -> List[Command]: ...
    def on_snapshot_installed(self, meta: SnapshotMeta) -> List[Command]: ...
    def on_snapshot_send_failed(self, target: int, msg_id: int) -> List[Command]: ...
