"""The event pump and command executor of one node's runtime."""
import asyncio
from typing import Any, Callable, List, Optional, Tuple
from typing_extensions import disjoint_base

from openraft_fast._core.applier import Applier
from openraft_fast._core.engine import Engine
from openraft_fast._core.events import EventQueue
from openraft_fast._core.inbox import RpcInbox
from openraft_fast._core.peers import Peers
from openraft_fast._core.writes import ClientWrites


@disjoint_base
class Executor(EventQueue):
    on_reply: Callable[[Any, Any, Optional[BaseException]], None]
    on_send_snapshot: Callable[[Any, Any], None]
    after_pump_hook: Callable[[], None]
    watched: bool
    core_waiters: List[Tuple[Callable[..., bool], "asyncio.Future[None]"]]
    metric_waiters: List[Tuple[Callable[..., bool], "asyncio.Future[None]"]]
    def __init__(self, loop: asyncio.AbstractEventLoop, engine: Engine, log_store: Any, sm: Any,
                 network_factory: Any, orphan_bound: float) -> None: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def events_run(self) -> int:
        """Engine events handled so far (one call into the engine each)."""
    @property
    def commands_run(self) -> int: ...
    @property
    def writes(self) -> ClientWrites: ...
    @property
    def applier(self) -> Applier: ...
    @property
    def peers(self) -> Peers: ...
    @property
    def inbox(self) -> RpcInbox: ...
    forward_write: Any
    def write(self, payload: Any, forward: bool = False, timeout: Optional[float] = None) -> "asyncio.Future[Any]": ...
    def write_into(self, payload: Any, sink: Any) -> None: ...
    def write_many(self, payloads: List[Any]) -> "asyncio.Future[Any]": ...
    def _do_write(self, payloads: List[Any], sinks: List[Any], many: bool) -> Any: ...
    def cancel_timer(self) -> None: ...
