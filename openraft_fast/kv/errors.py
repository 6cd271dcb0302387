"""Errors of the KV service's client side. Every one is a RaftError; `code` is the service's
machine-readable error code (the JSON `error.code`), `status` the HTTP status (0: none)."""
from __future__ import annotations

from openraft_fast.errors import RaftError


class KvError(RaftError):
    def __init__(self, code: str, message: str, status: int = 0) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))


class KvRequestError(KvError):
    """The service refused the request (a 4xx answer: bad request, membership change in progress,
    not initialized...). Nothing was applied; retrying the same request will fail the same way
    unless the cluster changes."""


class KvUnavailable(KvError):
    """No endpoint gave an answer before the client's deadline (no leader, no quorum, endpoints
    unreachable). For a write: it was never applied if only refusals were seen, see `ambiguous`."""

    def __init__(self, code: str, message: str, status: int = 0, ambiguous: bool = False) -> None:
        self.ambiguous = ambiguous
        super().__init__(code, message, status)


class KvOutcomeUnknown(KvError):
    """A write failed in a way that leaves its outcome unknown: it may have been applied (once)
    or not. Read the key to find out before retrying a non-idempotent write (a cas)."""


class KvCompacted(KvRequestError):
    """A watch asked for changes older than the service keeps (410 `compacted`): those from
    `compacted_revision` + 1 on are still there; older ones are gone (read the keys instead)."""

    def __init__(self, message: str, compacted_revision: int) -> None:
        self.compacted_revision = compacted_revision
        super().__init__("compacted", message, 410)
