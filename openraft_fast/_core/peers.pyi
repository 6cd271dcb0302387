"""Outgoing RPCs: one network client per target; responses come back as engine events."""
from typing import Any, Callable, Dict, Optional

from typing_extensions import disjoint_base

from openraft_fast._core.events import EventQueue


@disjoint_base
class Peers:
    on_timeout_now_failed: Optional[Callable[[Any, BaseException], None]]   # a TimeoutNow could not be delivered
    def __init__(self, q: EventQueue, factory: Any, engine: Any) -> None: ...
    @property
    def clients(self) -> Dict[Any, Any]: ...
    def client(self, target: Any) -> Optional[Any]: ...
    def close_all(self) -> None: ...
