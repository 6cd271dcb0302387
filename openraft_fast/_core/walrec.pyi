from typing import Any, Callable, List, Optional, Tuple

from openraft_fast._core.log import LogSlice
from openraft_fast._core.types import LeaderId

HEADER_BYTES: int
BODY_FIXED_BYTES: int
RECORD_OVERHEAD: int
END: int
TORN: int
BAD_CRC: int
BAD_INDEX: int

def crc32c(data: Any, crc: int = ...) -> int: ...
def crc32c_software(data: Any, crc: int = ...) -> int: ...
def hardware_crc() -> bool: ...
def encode(s: LogSlice, mencode: Callable[[Any], bytes], base: int = ...) -> Tuple[bytes, bytes]: ...
def decode(
    data: Any, pos: int, expect_index: int, materialize: bool, mdecode: Optional[Callable[[bytes], Any]] = ...
) -> Tuple[int, int, int, int, bytes, Optional[List[Any]], Optional[bytes], Optional[List[Tuple[int, LeaderId]]], Optional[LeaderId]]: ...
