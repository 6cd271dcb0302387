"""Commands the engine emits, for the runtime to execute in order.

Storage commands run in the order given; SaveVote, TruncateLog, PurgeLog and SaveCommitted are
durable before any later command runs. AppendLog may finish later: the runtime then calls
engine.on_log_flushed(last log id). `code` (one of the constants below) allows a switch.
"""
from typing import Any, Optional, Union
from typing_extensions import disjoint_base

from openraft_fast._core.log import LogSlice
from openraft_fast._core.messages import (AppendRequest, AppendResponse, InstallSnapshotRequest,
                                          SnapshotMeta, SnapshotResponse, TimeoutNow, VoteRequest,
                                          VoteResponse)
from openraft_fast._core.record import Record
from openraft_fast._core.types import LogId, Vote

SAVE_VOTE: int
APPEND_LOG: int
TRUNCATE_LOG: int
PURGE_LOG: int
SAVE_COMMITTED: int
SEND: int
SEND_HEARTBEAT: int
RESPOND: int
APPLY: int
BUILD_SNAPSHOT: int
INSTALL_SNAPSHOT: int
SEND_SNAPSHOT: int
REPLY: int


@disjoint_base
class Command(Record):
    @property
    def code(self) -> int: ...


@disjoint_base
class SaveVote(Command):
    def __init__(self, vote: Vote) -> None: ...
    @property
    def vote(self) -> Vote: ...


@disjoint_base
class AppendLog(Command):
    def __init__(self, entries: LogSlice) -> None: ...
    @property
    def entries(self) -> LogSlice: ...


@disjoint_base
class TruncateLog(Command):
    def __init__(self, after: int) -> None: ...
    @property
    def after(self) -> int:
        """Keep entries <= after."""


@disjoint_base
class PurgeLog(Command):
    def __init__(self, upto: LogId) -> None: ...
    @property
    def upto(self) -> LogId:
        """Drop entries <= upto.index (it may lie past the last entry)."""


@disjoint_base
class SaveCommitted(Command):
    def __init__(self, log_id: LogId) -> None: ...
    @property
    def log_id(self) -> LogId: ...


@disjoint_base
class Send(Command):
    def __init__(self, target: int, msg: Union[VoteRequest, AppendRequest, TimeoutNow]) -> None: ...
    @property
    def target(self) -> int: ...
    @property
    def msg(self) -> Union[VoteRequest, AppendRequest, TimeoutNow]: ...


@disjoint_base
class SendHeartbeat(Command):
    def __init__(self, target: int, msg: AppendRequest) -> None: ...
    @property
    def target(self) -> int: ...
    @property
    def msg(self) -> AppendRequest:
        """An AppendRequest without entries: never queued behind bulk data."""


@disjoint_base
class Respond(Command):
    def __init__(self, target: int,
                 msg: Union[VoteResponse, AppendResponse, SnapshotResponse]) -> None: ...
    @property
    def target(self) -> int: ...
    @property
    def msg(self) -> Union[VoteResponse, AppendResponse, SnapshotResponse]: ...


@disjoint_base
class Apply(Command):
    def __init__(self, entries: LogSlice) -> None: ...
    @property
    def entries(self) -> LogSlice:
        """Committed entries in order; report engine.on_applied(last log id)."""


class BuildSnapshot(Command):
    """Report engine.on_snapshot_built(meta) when done."""
    def __init__(self) -> None: ...


@disjoint_base
class InstallSnapshot(Command):
    def __init__(self, meta: SnapshotMeta, data: Any) -> None: ...
    @property
    def meta(self) -> SnapshotMeta: ...
    @property
    def data(self) -> Any:
        """Replaces the state machine; report engine.on_snapshot_installed(meta)."""


@disjoint_base
class SendSnapshot(Command):
    def __init__(self, target: int, req: InstallSnapshotRequest) -> None: ...
    @property
    def target(self) -> int: ...
    @property
    def req(self) -> InstallSnapshotRequest:
        """data is None: the runtime streams its current snapshot."""


@disjoint_base
class Reply(Command):
    def __init__(self, req_id: Any, value: Any = None,
                 error: Optional[BaseException] = None) -> None: ...
    @property
    def req_id(self) -> Any: ...
    @property
    def value(self) -> Any:
        """For a read: the LogId the caller waits to see applied (None on error)."""
    @property
    def error(self) -> Optional[BaseException]: ...
