"""The apply queue: committed entries, snapshot builds and installs, in order, off the replication path."""
import asyncio
from typing import Any, Callable, Optional

from typing_extensions import disjoint_base

from openraft_fast._core.events import EventQueue
from openraft_fast._core.writes import ClientWrites


@disjoint_base
class Applier:
    snapshot_hook: Optional[Callable[[bool, Any], None]]
    def __init__(self, q: EventQueue, loop: asyncio.AbstractEventLoop, sm: Any, engine: Any,
                 writes: ClientWrites) -> None: ...
    @property
    def applied_index(self) -> int: ...
    def wait_applied(self, index: int, value: Any = None) -> "asyncio.Future[Any]": ...
    def fail_all(self, err: BaseException) -> None: ...
