"""RPCs received: each request becomes an engine event; the caller's future waits for the response."""
import asyncio
from typing import Any, Callable, Optional

from typing_extensions import disjoint_base

from openraft_fast._core.events import EventQueue


@disjoint_base
class RpcInbox:
    serve_read_index: Optional[Callable[[Any, "asyncio.Future[Any]"], None]]
    serve_forward: Optional[Callable[[Any, "asyncio.Future[Any]"], None]]
    def __init__(self, q: EventQueue, engine: Any,
                 serve_read_index: Optional[Callable[[Any, "asyncio.Future[Any]"], None]],
                 serve_forward: Optional[Callable[[Any, "asyncio.Future[Any]"], None]] = None) -> None: ...
    def receive(self, kind: str, src: Any, msg: Any, fut: "asyncio.Future[Any]") -> None: ...
    def fail_all(self, err: BaseException) -> None: ...
