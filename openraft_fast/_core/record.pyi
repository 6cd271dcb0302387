"""Field-wise eq/repr/pickle for small value classes (messages, commands)."""
from typing import Any, ClassVar, Tuple


class Record:
    """Base of the engine's value classes: equality, repr and pickling come from `_fields`."""
    _fields: ClassVar[Tuple[str, ...]]
    __hash__: ClassVar[None]  # type: ignore[assignment]  # unhashable: equality is field-wise

    def _values(self) -> Tuple[Any, ...]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
