"""The runtime's event queue: engine events posted by the runtime's concerns, drained by the executor."""
from collections import deque
from typing import Any, Callable, Optional, Tuple
from typing_extensions import disjoint_base


@disjoint_base
class EventQueue:
    @property
    def events(self) -> "deque[Tuple[Callable[..., Any], Tuple[Any, ...]]]": ...
    stopped: Optional[BaseException]
    on_fatal: Callable[[BaseException, Optional[BaseException]], None]
    def post(self, fn: Callable[..., Any], *args: Any) -> None: ...
