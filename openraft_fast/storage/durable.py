"""open_storage: a node's durable storage in one directory.

Layout of `path`:
  log/        the WalLogStore (vote, committed id, log segments)
  snapshot/   the state machine's current snapshot (SnapshotStore)
"""
from __future__ import annotations

import os
from typing import Tuple

from openraft_fast.storage.memory import MemStateMachine
from openraft_fast.storage.wal import WalLogStore


def open_storage(path, segment_bytes: int = 64 << 20, **wal_options) -> Tuple[WalLogStore, MemStateMachine]:
    """Open (or create) the storage of one node in `path`: (log store, state machine).

    The state machine is a MemStateMachine whose snapshots are kept on disk; after a restart it
    holds the last snapshot and the node replays the committed log after it. `segment_bytes` and
    `wal_options` go to WalLogStore. Close the log store (`await log_store.close()`) after
    `raft.shutdown()`: it flushes and releases the directory."""
    path = os.fspath(path)
    log_store = WalLogStore(os.path.join(path, "log"), segment_bytes=segment_bytes, **wal_options)
    try:
        state_machine = MemStateMachine(snapshot_dir=os.path.join(path, "snapshot"))
    except BaseException:
        log_store.close_now()
        raise
    return log_store, state_machine
