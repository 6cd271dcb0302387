"""Storage: the contracts (LogStore, StateMachine), the types they take, the stores we ship,
and SnapshottingStateMachine, the base for a state machine of your own (docs/state-machine.md).

Entry kinds (`LogSlice.kinds`): NORMAL (application payload, bytes), BLANK (no payload: a new
leader's first entry), MEMBERSHIP (the payload is a Membership).
"""
from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL
from openraft_fast.storage.base import LogState, LogStore, Snapshot, StateMachine
from openraft_fast.storage.durable import open_storage
from openraft_fast.storage.memory import MemLogStore, MemStateMachine, NoopStateMachine
from openraft_fast.storage.snapshot_store import SnapshotStore
from openraft_fast.storage.snapshotting import SnapshottingStateMachine
from openraft_fast.storage.wal import WalLogStore

__all__ = ["BLANK", "LogBuffer", "LogSlice", "LogState", "LogStore", "MEMBERSHIP", "MemLogStore", "MemStateMachine",
           "NORMAL", "NoopStateMachine", "Snapshot", "SnapshotMeta", "SnapshotStore", "SnapshottingStateMachine",
           "StateMachine", "WalLogStore", "open_storage"]
