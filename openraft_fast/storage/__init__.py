"""Storage: the contracts (LogStore, StateMachine) and the stores we ship."""
from openraft_fast.storage.base import LogState, LogStore, Snapshot, StateMachine
from openraft_fast.storage.memory import MemLogStore, MemStateMachine, NoopStateMachine
from openraft_fast.storage.wal import WalLogStore

__all__ = ["LogState", "LogStore", "MemLogStore", "MemStateMachine", "NoopStateMachine", "Snapshot", "StateMachine", "WalLogStore"]
