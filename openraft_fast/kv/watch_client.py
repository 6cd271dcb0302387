"""KvClient.watch: the changes under a key or prefix as an async iterator, each delivered
exactly once and in revision order, across dropped connections, node restarts and leader
changes (any node serves a watch; it resumes on another from the last revision delivered).

Resuming: every change delivered is counted at its revision. A `progress` line at revision r
says all changes up to r were sent, so the next stream starts at r + 1. Otherwise it starts at
the revision of the last change delivered and skips the changes of that revision already
delivered (a transaction or range delete writes many keys at one revision, always in the same
order on every node).
"""
from __future__ import annotations

import asyncio
import json
import random
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, Optional

import aiohttp

from openraft_fast.errors import InvalidArgument
from openraft_fast.kv.errors import KvCompacted, KvRequestError, KvUnavailable
from openraft_fast.kv.state_machine import KvChange

if TYPE_CHECKING:
    from openraft_fast.kv.client import KvClient

# A stream silent for this long (progress lines come every second) is taken as dead.
IDLE_TIMEOUT = 5.0


class _Position:
    """Where the watch stands: the next stream starts at `start`, skipping the first `skip`
    changes of that revision (already delivered)."""
    __slots__ = ("start", "skip", "last", "count_at_last")

    def __init__(self, start: Optional[int]) -> None:
        self.start = start              # None: after whatever the first node has applied
        self.skip = 0
        self.last = 0                   # revision of the last change delivered
        self.count_at_last = 0          # how many changes of that revision were delivered

    def delivered(self, revision: int) -> None:
        if revision == self.last:
            self.count_at_last += 1
        else:
            self.last, self.count_at_last = revision, 1
        self.start, self.skip = revision, self.count_at_last

    def progress(self, revision: int) -> None:
        """Every change up to `revision` was sent on this stream."""
        if self.start is None or revision + 1 > self.start:
            self.start, self.skip = revision + 1, 0


async def watch(client: "KvClient", prefix: Optional[str], key: Optional[str],
                from_revision: Optional[int]) -> AsyncIterator[KvChange]:
    if (prefix is None) == (key is None):
        raise InvalidArgument("give exactly one of prefix= and key=")
    if from_revision is not None and (isinstance(from_revision, bool) or not isinstance(from_revision, int)
                                      or from_revision < 1):
        raise InvalidArgument(f"from_revision must be an integer >= 1, got {from_revision!r}")
    endpoints = [e for e in client.endpoints if e.startswith("http")]
    if not endpoints:
        raise InvalidArgument("watch needs an http(s):// endpoint (it streams over HTTP)")
    pos = _Position(from_revision)
    loop = asyncio.get_running_loop()
    failing_since: Optional[float] = None
    failures = 0
    last_failure = "no attempt"
    turn = random.randrange(len(endpoints))
    while True:
        base = endpoints[turn % len(endpoints)]
        params: Dict[str, Any] = {"prefix": prefix} if key is None else {"key": key}
        if pos.start is not None:
            params["from_revision"] = str(pos.start)
        skip = pos.skip
        got_any = False
        try:
            async with client._http().get(base + "/v1/watch", params=params,
                                          timeout=aiohttp.ClientTimeout(total=None, connect=client.request_timeout)) \
                    as resp:
                if resp.status == 410:
                    body = await _json_body(resp)
                    err = body.get("error", {})
                    raise KvCompacted(err.get("message", "compacted"), int(body.get("compacted_revision", 0)))
                if resp.status != 200:
                    body = await _json_body(resp)
                    err = body.get("error", {}) if isinstance(body, dict) else {}
                    if 400 <= resp.status < 500:
                        raise KvRequestError(err.get("code") or "http_error", err.get("message") or f"HTTP {resp.status}",
                                             resp.status)
                    raise _Retry(f"{base}: HTTP {resp.status} {err.get('code')}")
                while True:
                    line = await asyncio.wait_for(resp.content.readline(), IDLE_TIMEOUT)
                    if not line:
                        raise _Retry(f"{base}: the stream ended")
                    event = json.loads(line)
                    kind = event.get("type")
                    got_any = True
                    if kind == "put" or kind == "delete":
                        revision = event["revision"]
                        if pos.start is not None and revision < pos.start:
                            continue                # before where this stream was asked to start
                        if skip and revision == pos.start:
                            skip -= 1
                            continue
                        skip = 0
                        pos.delivered(revision)
                        yield KvChange(revision, kind, event["key"], event.get("value"), event.get("prev_revision", 0))
                    elif kind == "progress":
                        if skip == 0:
                            pos.progress(event["revision"])
                    elif kind == "error":
                        raise _Retry(f"{base}: {event.get('code')}: {event.get('message')}")
        except (_Retry, aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            last_failure = str(exc) or repr(exc)
        if got_any:
            failing_since, failures = None, 0
        elif failing_since is None:
            failing_since = loop.time()
        elif loop.time() - failing_since > client.timeout:
            raise KvUnavailable("unavailable", f"watch: no endpoint served it for {client.timeout:g}s; "
                                               f"last: {last_failure}")
        failures += 1
        turn += 1
        await asyncio.sleep(min(client.max_backoff, 0.05 * 2 ** min(failures - 1, 10)) * random.uniform(0.5, 1.0))


class _Retry(Exception):
    """This stream is over: resume on the next endpoint."""


async def _json_body(resp: aiohttp.ClientResponse) -> Dict[str, Any]:
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
