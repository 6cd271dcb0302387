"""KvClient: an asyncio client of the KV service that finds the leader and rides out failovers.

Every call has a total deadline (`timeout`). Inside it the client follows 307 redirects to the
leader, and retries with bounded exponential backoff on another endpoint when a node is
unreachable or answers 503 (no leader, no quorum, stopping): those refusals happen before a
write is appended, so retrying them cannot apply a write twice.

Ambiguous failures are different: the connection broke or timed out after the request was
sent, or the server answered 500 "outcome_unknown". The write may have been applied, once.
- `put` and `delete` retry them by default (`retry_ambiguous_writes=True`): a put retried this
  way may apply twice; the value ends the same, its revision may be higher than the first
  attempt's. Pass `retry_ambiguous_writes=False` (client-wide or per call) to get
  KvOutcomeUnknown instead.
- `cas` never retries them: it raises KvOutcomeUnknown (read the key to learn what happened).
Reads are always retried.
"""
from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlsplit

import aiohttp

from openraft_fast.errors import InvalidArgument, InvalidArgumentType
from openraft_fast.kv import commands
from openraft_fast.kv.binary import (OP_CAS_REVISION, OP_CAS_VALUE, OP_DELETE, OP_DELETE_RANGE, OP_GET,
                                     OP_LEASE_GRANT, OP_LEASE_INFO, OP_LEASE_KEEPALIVE, OP_LEASE_REVOKE, OP_LIST,
                                     OP_PUT, OP_STATUS, OP_TXN)
from openraft_fast.kv.binary_client import BinaryChannel, ChannelClosed
from openraft_fast.kv.endpoints import normalize_endpoint
from openraft_fast.kv.errors import KvError, KvOutcomeUnknown, KvRequestError, KvUnavailable
from openraft_fast.kv.state_machine import KvChange, KvItem
from openraft_fast.kv.txn import TxnResult, parse_txn

if TYPE_CHECKING:
    from openraft_fast.kv.lease_client import Lease
    from openraft_fast.kv.recipes import Election, Lock

_UNSET: Any = object()
# The HTTP scheme that goes with an endpoint's: a node's other addresses (health) are HTTP.
_HTTP_SCHEME = {"http": "http", "https": "https", "orf": "http", "orfs": "https"}
# Codes of a 503 (or a 307): refused before anything was appended, so safe to retry anywhere.
_REDIRECTS_BEFORE_BACKOFF = 3


class CasResult(NamedTuple):
    """ok: the value was set and `revision` is the new one. Not ok: nothing changed; `value`
    and `revision` are the key's current ones (None / 0: absent)."""
    ok: bool
    revision: int
    value: Optional[str]


class KvClient:
    """`async with KvClient(["http://127.0.0.1:8001", ...]) as kv: await kv.put("k", "v")`.

    `timeout`: total deadline of one call, retries included. `request_timeout`: one HTTP
    attempt. `ssl`: an ssl.SSLContext for https endpoints (client certificate included)."""

    def __init__(self, endpoints: Union[str, Sequence[str]], *, timeout: float = 10.0, request_timeout: float = 5.0,
                 retry_ambiguous_writes: bool = True, ssl=None, max_backoff: float = 1.0) -> None:
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self.endpoints: List[str] = [normalize_endpoint(e) for e in endpoints]
        if not self.endpoints:
            raise InvalidArgument("KvClient needs at least one endpoint")
        for name, v in (("timeout", timeout), ("request_timeout", request_timeout), ("max_backoff", max_backoff)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise InvalidArgument(f"{name} must be a positive number, got {v!r}")
        self.timeout = float(timeout)
        self.request_timeout = float(request_timeout)
        self.retry_ambiguous_writes = retry_ambiguous_writes
        self.max_backoff = float(max_backoff)
        self._ssl = ssl
        self._session: Optional[aiohttp.ClientSession] = None
        self._channels: Dict[str, BinaryChannel] = {}      # orf:// endpoints
        self._leader: Optional[str] = None      # where the last success or redirect pointed
        self._next = 0

    async def __aenter__(self) -> "KvClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels = {}
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_mark_sent)
            self._session = aiohttp.ClientSession(connector=connector, trace_configs=[trace])
            # aiohttp resends a PUT/DELETE once on a new connection when a kept-alive one breaks
            # after the request was sent (RFC 9112 9.3.1). Ambiguity is this client's business
            # (the trace above marks what left): no hidden resend of a write.
            self._session._retry_connection = False  # type: ignore[attr-defined]
        return self._session

    # ------------------------------------------------------------------ key-value calls
    async def put(self, key: str, value: str, *, lease: int = 0, retry_ambiguous: Optional[bool] = None) -> int:
        """Set `key`; returns its new revision. With `lease` (an id from `lease()` or
        `grant_lease`), the key is deleted when the lease is revoked or expires
        (KvRequestError "lease_not_found" when it no longer exists)."""
        commands.put(key, value, lease)             # checks the arguments
        body_json: Dict[str, Any] = {"value": value, "lease": lease} if lease else {"value": value}
        _, body = await self._call("PUT", _kv_path(key), body_json, kind=self._write_kind(retry_ambiguous),
                                   op=[OP_PUT, key, value, lease] if lease else [OP_PUT, key, value])
        return body["revision"]

    async def get(self, key: str, consistency: str = "linearizable") -> Optional[KvItem]:
        """The key's value and revision, or None if absent."""
        commands.check_key(key)
        status, body = await self._call("GET", _kv_path(key), params={"consistency": consistency}, kind="read",
                                        absent_ok=True, op=[OP_GET, key, consistency])
        return None if status == 404 else KvItem(key, body["value"], body["revision"])

    async def delete(self, key: str, *, retry_ambiguous: Optional[bool] = None) -> int:
        """Delete `key` (absent is fine); returns the revision of the delete."""
        commands.check_key(key)
        _, body = await self._call("DELETE", _kv_path(key), kind=self._write_kind(retry_ambiguous),
                                   op=[OP_DELETE, key])
        return body["revision"]

    async def cas(self, key: str, value: str, *, expected: Optional[str] = _UNSET,
                  expected_revision: Optional[int] = None) -> CasResult:
        """Set `key` to `value` if its value is `expected` (None: absent), or if its revision
        is `expected_revision` (0: absent). Give exactly one. Raises KvOutcomeUnknown when the
        outcome is unknown (never retried)."""
        commands.check_key(key)
        commands.check_value(value)
        if (expected is _UNSET) == (expected_revision is None):
            raise InvalidArgument("give exactly one of expected= and expected_revision=")
        if expected is not _UNSET:
            if expected is not None:
                commands.check_value(expected, "expected")
            req: Dict[str, Any] = {"expected": expected, "value": value}
            op: List[Any] = [OP_CAS_VALUE, key, expected, value]
        else:
            assert expected_revision is not None
            commands.cas_revision(key, expected_revision, value)    # checks the revision
            req = {"expected_revision": expected_revision, "value": value}
            op = [OP_CAS_REVISION, key, expected_revision, value]
        _, body = await self._call("POST", _kv_path(key) + "/cas", req, kind="cas", op=op)
        if body["ok"]:
            return CasResult(True, body["revision"], value)
        return CasResult(False, body.get("revision", 0), body.get("value"))

    async def delete_range(self, prefix: str, *, retry_ambiguous: Optional[bool] = None) -> Tuple[int, int]:
        """Delete every key under `prefix` (not empty) in one entry: (revision, keys deleted)."""
        commands.check_prefix(prefix)
        _, body = await self._call("DELETE", "/v1/kv", params={"prefix": prefix},
                                   kind=self._write_kind(retry_ambiguous), op=[OP_DELETE_RANGE, prefix])
        return body["revision"], body["deleted"]

    async def txn(self, compare: Sequence[Dict[str, Any]] = (), success: Sequence[Dict[str, Any]] = (),
                  failure: Sequence[Dict[str, Any]] = ()) -> TxnResult:
        """One transaction (kv.txn: the forms of compares, ops and results): if every compare
        holds, the `success` ops run, else the `failure` ops, in one entry. Raises
        KvOutcomeUnknown when the outcome is unknown (never retried)."""
        request = {"compare": list(compare), "success": list(success), "failure": list(failure)}
        parse_txn(request)              # a bad transaction fails here, before anything is sent
        _, body = await self._call("POST", "/v1/txn", request, kind="cas", op=[OP_TXN, request])
        return TxnResult(body["succeeded"], body["revision"], body["results"])

    # ------------------------------------------------------------------ leases (kv.leases)
    def lease(self, ttl: float) -> "Lease":
        """`async with kv.lease(10) as lease: await kv.put("k", "v", lease=lease.id)`: a lease
        kept alive in the background (every ttl/3) and revoked on exit; `lease.lost` is set
        if it expired or was revoked meanwhile (its keys are gone then)."""
        from openraft_fast.kv.lease_client import Lease
        return Lease(self, ttl)

    async def grant_lease(self, ttl: float) -> int:
        """A new lease of `ttl` seconds; returns its id. Keep it alive with `keepalive`."""
        commands.check_ttl(ttl)
        _, body = await self._call("POST", "/v1/lease", {"ttl": ttl}, kind="cas", op=[OP_LEASE_GRANT, ttl])
        return body["id"]

    async def keepalive(self, lease: int) -> float:
        """Renew the lease for its TTL (the leader counts it from now); returns the TTL.
        KvRequestError "lease_not_found" when it expired or was revoked."""
        commands.check_lease(lease)
        _, body = await self._call("POST", f"/v1/lease/{lease}/keepalive", kind="read", op=[OP_LEASE_KEEPALIVE, lease])
        return body["ttl"]

    async def revoke_lease(self, lease: int) -> int:
        """Revoke the lease: its keys are deleted at one revision; returns how many."""
        commands.check_lease(lease)
        _, body = await self._call("DELETE", f"/v1/lease/{lease}", kind="write", op=[OP_LEASE_REVOKE, lease])
        return body["deleted"]

    async def lease_info(self, lease: int) -> Dict[str, Any]:
        """{"id", "ttl", "remaining", "keys"}, from the leader."""
        commands.check_lease(lease)
        _, body = await self._call("GET", f"/v1/lease/{lease}", kind="read", op=[OP_LEASE_INFO, lease])
        return body

    # ------------------------------------------------------------------ recipes (kv.recipes)
    def lock(self, name: str, ttl: float = 10.0) -> "Lock":
        """`async with kv.lock("jobs/cleanup", ttl=10) as lock:`: a lock queued fairly by
        revision, held while the block runs, released on exit or when the holder's lease
        expires (it crashed, or was cut off for `ttl`). `lock.fencing_token` grows with each
        holder: pass it to the resource the lock guards (kv.recipes)."""
        from openraft_fast.kv.recipes import Lock
        return Lock(self, name, ttl)

    def election(self, name: str, ttl: float = 10.0) -> "Election":
        """A leader election: `campaign(value)`, `resign()`, `leader()`, `observe()`."""
        from openraft_fast.kv.recipes import Election
        return Election(self, name, ttl)

    def watch(self, prefix: Optional[str] = None, *, key: Optional[str] = None,
              from_revision: Optional[int] = None) -> AsyncIterator[KvChange]:
        """The changes under `prefix` (or to `key`), in revision order, each once, as an async
        iterator that never ends by itself: `async for change in kv.watch("jobs/"): ...`.
        From `from_revision` on (inclusive), else after the current revision. It rides out
        dropped connections, restarts and leader changes (kv.watch_client); raises
        KvCompacted when the service no longer keeps `from_revision`, and KvUnavailable when
        no endpoint served it for `timeout` seconds."""
        from openraft_fast.kv.watch_client import watch
        return watch(self, prefix, key, from_revision)

    async def list(self, prefix: str = "", consistency: str = "linearizable",
                   limit: Optional[int] = None) -> List[KvItem]:
        if not isinstance(prefix, str):
            raise InvalidArgumentType(f"prefix must be a str, got {type(prefix).__name__}")
        params = {"prefix": prefix, "consistency": consistency}
        if limit is not None:
            params["limit"] = str(limit)
        _, body = await self._call("GET", "/v1/kv", params=params, kind="read",
                                   op=[OP_LIST, prefix, consistency, limit])
        return [KvItem(i["key"], i["value"], i["revision"]) for i in body["items"]]

    # ------------------------------------------------------------------ cluster calls
    async def init(self, nodes: Dict[int, Tuple[str, ...]]) -> Dict[str, Any]:
        """Initialize the cluster at the first endpoint: {id: (raft "h:p", http "h:p"[, client
        "h:p"])}; a node's client address (serve --client) is where binary clients are
        redirected when it leads."""
        spec = {str(i): dict(zip(("raft", "http", "client"), addrs)) for i, addrs in nodes.items()}
        return (await self._call("POST", "/v1/cluster/init", {"nodes": spec}, kind="cas", only=self.endpoints[0]))[1]

    async def add_learner(self, node_id: int, raft: str, http: str, timeout: float = 30.0,
                          client: Optional[str] = None) -> Dict[str, Any]:
        """Add a learner; returns once it has caught up. If it has not within `timeout`
        seconds, raises KvRequestError("learner_not_caught_up"): it was added, but is not
        running, reachable or caught up (make it a voter only once it is). Membership calls
        are not retried after an ambiguous failure (KvOutcomeUnknown)."""
        body: Dict[str, Any] = {"id": node_id, "raft": raft, "http": http, "timeout": timeout}
        if client is not None:
            body["client"] = client
        return (await self._call("POST", "/v1/cluster/learners", body, kind="cas"))[1]

    async def change_membership(self, voters: Sequence[int], retain: bool = False,
                                force: bool = False) -> Dict[str, Any]:
        """Make `voters` the voters. Refused (KvRequestError("not_enough_healthy_voters"))
        when fewer than a quorum of them are healthy, unless `force`."""
        body = {"voters": list(voters), "retain": retain}
        if force:
            body["force"] = True
        return (await self._call("PUT", "/v1/cluster/membership", body, kind="cas"))[1]

    async def remove_node(self, node_id: int, force: bool = False) -> Dict[str, Any]:
        """Take `node_id` out of the voters and learners; returns once applied (the leader
        removing itself hands over first; the call follows it). Refused like
        change_membership (KvRequestError("not_enough_healthy_voters")) unless `force`."""
        return (await self._call("DELETE", f"/v1/cluster/nodes/{int(node_id)}",
                                 params={"force": "true"} if force else None, kind="cas"))[1]

    async def transfer_leader(self, to: int) -> Dict[str, Any]:
        return (await self._call("POST", "/v1/cluster/transfer-leader", {"to": to}, kind="cas"))[1]

    async def status(self, endpoint: Optional[str] = None) -> Dict[str, Any]:
        """One node's status (`endpoint`, default the first one), asked once: no redirect."""
        only = self.endpoints[0] if endpoint is None else normalize_endpoint(endpoint)
        return (await self._call("GET", "/v1/cluster/status", kind="read", only=only, op=[OP_STATUS]))[1]

    async def cluster_status(self) -> Dict[str, Union[Dict[str, Any], KvError]]:
        """Every endpoint's status, asked at once: {endpoint: status or the error}."""
        async def one(url):
            try:
                return await self.status(url)
            except KvError as exc:
                return exc
        results = await asyncio.gather(*(one(u) for u in self.endpoints))
        return dict(zip(self.endpoints, results))

    async def members_status(self) -> Dict[str, Any]:
        """The whole cluster as its membership says: the endpoints are asked for the
        membership (a leader's answer first), then every member's HTTP address for its status
        and health, all at once, each bounded by the client's timeout. Returns
        {"leader": id or None, "members": [row per member, by id]}; a row holds id, http,
        raft, role, term, last_log, applied, lag and health ("ok", a /v1/health reason, or
        "unreachable", with "error"). Raises KvUnavailable when no endpoint answered."""
        answers = await self.cluster_status()
        live = [(u, s) for u, s in answers.items() if isinstance(s, dict)]
        if not live:
            raise KvUnavailable("unavailable", "no endpoint answered: " + "; ".join(
                f"{e}" for e in answers.values()))
        url, st = next(((u, s) for u, s in live if s.get("state") == "leader"), live[0])
        scheme = _HTTP_SCHEME[urlsplit(url).scheme]     # health is asked over HTTP
        ids = sorted(set(st.get("voters", [])) | set(st.get("learners", [])))
        nodes = st.get("nodes", {})

        async def one(i: int) -> Dict[str, Any]:
            node = nodes.get(str(i), {})
            row: Dict[str, Any] = {"id": i, "http": node.get("http"), "raft": node.get("raft"),
                                   "voter": i in st.get("voters", [])}
            if not node.get("http"):
                return {**row, "role": "unknown", "health": "unreachable", "error": "no HTTP address"}
            base = f"{scheme}://{node['http']}"
            try:
                (_, status), (code, health) = await asyncio.gather(self._fetch(base, "/v1/cluster/status"),
                                                                     self._fetch(base, "/v1/health"))
            except KvError as exc:
                return {**row, "role": "unreachable", "health": "unreachable", "error": str(exc)}
            row.update(role=status.get("state"), term=status.get("term"), last_log=status.get("last_log"),
                       applied=status.get("applied"), lag=health.get("lag"),
                       health="ok" if code == 200 and health.get("ok") else health.get("reason", f"HTTP {code}"))
            return row

        rows = await asyncio.gather(*(one(i) for i in ids))
        return {"leader": st.get("leader"), "members": list(rows)}

    async def backup(self) -> bytes:
        """A backup of the whole KV state at a linearizable point, taken by the leader
        (GET /v1/cluster/snapshot; kv.backup has the format): its bytes, checked."""
        from openraft_fast.kv.backup import read_backup
        last = "no endpoint"
        http = [u for u in self.endpoints if not u.startswith("orf")]
        if not http:
            raise InvalidArgument("backup needs an http(s):// endpoint (the binary protocol has no backup call)")
        for url in http:
            try:
                async with self._http().get(url + "/v1/cluster/snapshot", allow_redirects=True,
                                            timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                    body = await resp.read()
                    if resp.status == 200:
                        read_backup(body, f"the backup from {url}")      # whole and intact, or BackupError
                        return body
                    try:
                        import json
                        err = json.loads(body)["error"]
                        last = f"{url}: HTTP {resp.status} {err['code']}: {err['message']}"
                    except (ValueError, KeyError, TypeError):
                        last = f"{url}: HTTP {resp.status}"
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                last = f"{url}: {'no answer in time' if isinstance(exc, asyncio.TimeoutError) else exc}"
        raise KvUnavailable("unavailable", f"no backup: {last}")

    async def _fetch(self, base: str, path: str) -> Tuple[int, Dict[str, Any]]:
        """One GET, no retry, no redirect: (status, JSON body). KvUnavailable if it fails."""
        try:
            async with self._http().get(base + path, allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                data = await resp.json(content_type=None)
                return resp.status, data if isinstance(data, dict) else {}
        except (asyncio.TimeoutError, aiohttp.ClientError, ValueError) as exc:
            what = f"no answer within {self.timeout:g}s" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise KvUnavailable("unavailable", f"{base}: {what}") from None

    # ------------------------------------------------------------------ the retry loop
    def _write_kind(self, retry_ambiguous: Optional[bool]) -> str:
        retry = self.retry_ambiguous_writes if retry_ambiguous is None else retry_ambiguous
        return "write" if retry else "cas"

    def _target(self) -> str:
        if self._leader is not None:
            return self._leader
        url = self.endpoints[self._next % len(self.endpoints)]
        return url

    def _failed(self, url: str) -> None:
        """`url` could not serve: try the next endpoint."""
        if self._leader == url:
            self._leader = None
        if url in self.endpoints:
            self._next = (self.endpoints.index(url) + 1) % len(self.endpoints)
        else:
            self._next += 1

    async def _binary(self, base: str, op: Optional[List[Any]], what: str,
                      timeout: float) -> Tuple[int, Any, Optional[str], str]:
        """One attempt over the binary protocol: (status, body, redirect location, failure);
        status 0: nothing was sent; -1: sent, no answer (outcome unknown)."""
        if op is None:
            raise InvalidArgument(f"{what} needs an http(s):// endpoint (the binary protocol has key-value, "
                                  f"transaction and lease calls and status only), got {base}")
        channel = self._channels.get(base)
        if channel is None:
            u = urlsplit(base)
            channel = self._channels[base] = BinaryChannel(u.hostname or "", u.port or 0,
                                                           self._tls_context() if u.scheme == "orfs" else None)
        try:
            status, data = await channel.call(op, timeout)
        except ChannelClosed as exc:
            return -1, None, None, f"{base}: {exc}"
        except asyncio.TimeoutError:
            return -1, None, None, f"{base}: no answer in time"
        except OSError as exc:
            return 0, None, None, f"{base}: cannot connect ({exc})"
        location = data.get("location") if status == 307 and isinstance(data, dict) else None
        return status, data, location, ""

    def _tls_context(self):
        import ssl
        return self._ssl if self._ssl is not None else ssl.create_default_context()

    async def _http_attempt(self, base: str, method: str, path: str, body: Optional[dict], params,
                            timeout: float) -> Tuple[int, Any, Optional[str], str]:
        """One HTTP attempt: (status, body, Location, failure); status 0: nothing was sent;
        -1: sent, no answer (outcome unknown)."""
        sent = _Sent()
        try:
            async with self._http().request(method, base + path, json=body, params=params, allow_redirects=False,
                                            timeout=aiohttp.ClientTimeout(total=timeout),
                                            trace_request_ctx=sent) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                return resp.status, data, resp.headers.get("Location"), ""
        except aiohttp.ClientConnectorError as exc:
            # The connection was never made: nothing was sent.
            return 0, None, None, f"{base}: cannot connect ({exc.os_error or exc})"
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            what = "no answer in time" if isinstance(exc, asyncio.TimeoutError) else repr(exc)
            if sent.sent:
                return -1, None, None, f"{base}: {what}"         # the server may have acted on it
            return 0, None, None, f"{base}: cannot connect ({what} before the request was sent)"

    async def _call(self, method: str, path: str, body: Optional[dict] = None, *, params=None, kind: str,
                    absent_ok: bool = False, only: Optional[str] = None,
                    op: Optional[List[Any]] = None) -> Tuple[int, Dict[str, Any]]:
        """kind: "read" (always retried), "write" (retried after an ambiguous failure) or "cas"
        (an ambiguous failure raises KvOutcomeUnknown). `only`: ask that endpoint, once. `op`:
        the same call in the binary protocol, for orf:// endpoints."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        failures = 0
        redirects = 0
        ambiguous: Optional[str] = None
        last = "no attempt"
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            base = only or self._target()
            attempt = min(self.request_timeout, remaining)
            if base.startswith("orf"):
                status, data, location, failure = await self._binary(base, op, f"{method} {path}", attempt)
            else:
                status, data, location, failure = await self._http_attempt(base, method, path, body, params, attempt)
            if failure:
                last = failure
            if status > 0 and status not in (200, 307):
                last = f"{base}: HTTP {status} {data_code(data)}: {data_message(data)}"
            if kind != "read" and (status == -1 or (status >= 500 and status != 503)):
                # Sent, outcome unknown (a broken connection, a timeout, a 500 such as "outcome_unknown").
                if kind == "cas":
                    raise KvOutcomeUnknown("outcome_unknown", f"{method} {path}: {last}", max(status, 0))
                ambiguous = last
            elif 200 <= status < 300 or (absent_ok and status == 404 and data_code(data) == "key_not_found"):
                if only is None:
                    self._leader = base
                return status, data if isinstance(data, dict) else {}
            elif status == 307 and location and only is None:
                try:
                    loc = urlsplit(location)
                    self._leader = normalize_endpoint(f"{loc.scheme}://{loc.netloc}")
                except (ValueError, InvalidArgument):
                    raise KvError("bad_redirect", f"{base} redirected to {location!r}", status) from None
                redirects += 1
                last = f"{base}: redirected to {self._leader}"
                if redirects <= _REDIRECTS_BEFORE_BACKOFF:
                    continue
            elif status in (-1, 0, 503, 307) or status >= 500:
                pass        # a read, or refused before anything was appended: try again
            else:
                raise KvRequestError(data_code(data) or "http_error", data_message(data) or f"HTTP {status}", status)
            if only is not None:
                break
            self._failed(base)
            failures += 1
            delay = min(self.max_backoff, 0.05 * 2 ** min(failures - 1, 10)) * random.uniform(0.5, 1.0)
            await asyncio.sleep(max(0.0, min(delay, deadline - loop.time())))
        if ambiguous is not None:
            raise KvOutcomeUnknown("outcome_unknown", f"{method} {path}: gave up after an ambiguous failure "
                                                      f"({ambiguous}); last: {last}")
        raise KvUnavailable("unavailable", f"{method} {path}: no answer within {self.timeout}s; last: {last}")


class _Sent:
    """Whether a request's headers left this process: until then a failure means the server
    never saw it (safe to retry anything); after, its outcome is unknown."""
    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


async def _mark_sent(session, ctx, params) -> None:
    if isinstance(ctx.trace_request_ctx, _Sent):
        ctx.trace_request_ctx.sent = True


def _kv_path(key: str) -> str:
    return "/v1/kv/" + quote(key, safe="")


def data_code(data) -> str:
    err = data.get("error") if isinstance(data, dict) else None
    return str(err.get("code", "")) if isinstance(err, dict) else ""


def data_message(data) -> str:
    err = data.get("error") if isinstance(data, dict) else None
    return str(err.get("message", "")) if isinstance(err, dict) else ""
