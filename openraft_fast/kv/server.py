"""KvServer: the HTTP JSON API of one node of the replicated KV service, served by the lean
HTTP/1.1 server of kv/http.py (puts and deletes are answered from the node's apply callback
through Raft.client_write_into: no future, no task).

Routes and answers are a contract (README "KV service"). Writes go through the leader: a
follower answers 307 to the leader's HTTP address (`Node.data["http"]` in the membership).
Reads are served by any node at the asked `consistency`: `linearizable` (read index; on a
follower the leader is asked for it), `lease` (the leader lease when valid, else a read index),
`local` (this node's state, possibly stale). Errors are JSON
`{"error": {"code": ..., "message": ...}}`; `error_status` maps every RaftError to one.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Dict, Optional, Tuple

from openraft_fast._core.types import Node
from openraft_fast.errors import (ChangeMembershipError, Fatal, ForwardToLeader, InitializeError, InvalidArgument,
                                  InvalidArgumentType, LeaseExpired, NetworkError, OutcomeUnknown, QuorumNotEnough,
                                  RaftError, StorageError, Timeout, Unreachable)
from openraft_fast.kv import commands, txn
from openraft_fast.kv.http import HttpServer, Request, Response, Slot, StreamResponse, json_error, json_response
from openraft_fast.kv.listener import WriteSink
from openraft_fast.kv.metrics import KvMetrics
from openraft_fast.kv.leases import LeaseKeeper
from openraft_fast.kv.state_machine import LEASE_NOT_FOUND, CompactedRevision, KvStateMachine
from openraft_fast.kv.txn import LeaseNotFound
from openraft_fast.kv.watch import PROGRESS_INTERVAL, WatchHub
from openraft_fast.raft import Raft, ReadPolicy

_log = logging.getLogger("openraft_fast.kv")

CONSISTENCY = {
    "linearizable": ReadPolicy.READ_INDEX,
    "lease": ReadPolicy.LEASE_READ | ReadPolicy.READ_INDEX,
    "local": None,
}


# A put body that needs no JSON decoder: {"value": "..."} with no escape, quote or control
# character in the string (anything else goes through json.loads and its checks).
_PLAIN_PUT = re.compile(rb'\{[ \t\r\n]*"value"[ \t\r\n]*:[ \t\r\n]*"([^"\\\x00-\x1f]*)"[ \t\r\n]*\}[ \t\r\n]*\Z')


class ApiError(Exception):
    """An answer other than 2xx, raised inside a handler."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


# How long POST /v1/cluster/learners waits for the learner to catch up, unless the body says.
LEARNER_TIMEOUT = 30.0
DEFAULT_MAX_VALUE_BYTES = 1 << 20   # keys and values, in UTF-8 bytes (serve --max-value-bytes)


def error_status(exc: RaftError) -> Tuple[int, str]:
    """(HTTP status, error code) for a RaftError that is not a redirect."""
    if isinstance(exc, ForwardToLeader):
        # No leader we can send the client to.
        return 503, ("no_quorum" if exc.reason == ForwardToLeader.NO_QUORUM else
                     "leader_transferring" if exc.reason == ForwardToLeader.LEADER_TRANSFERRING else "no_leader")
    if isinstance(exc, OutcomeUnknown):
        return 500, "outcome_unknown"
    if isinstance(exc, ChangeMembershipError):
        if exc.reason == "in_progress":
            return 409, "membership_in_progress"
        if exc.reason == "not_enough_healthy_voters":
            return 409, "not_enough_healthy_voters"
        return 400, f"membership_{exc.reason}"
    if isinstance(exc, InitializeError):
        return 409, "init_refused"
    if isinstance(exc, LeaseExpired):
        return 503, "lease_expired"
    if isinstance(exc, QuorumNotEnough):
        return 503, "no_quorum"
    if isinstance(exc, Timeout):
        return 503, "timeout"
    if isinstance(exc, (InvalidArgument, InvalidArgumentType)):
        return 400, "bad_request"
    if isinstance(exc, (Unreachable, NetworkError)):
        return 503, "unavailable"
    if isinstance(exc, Fatal):      # Stopped included
        return 503, "stopped"
    if isinstance(exc, StorageError):
        return 500, "storage_error"
    return 500, "internal"


def _field(body: Dict[str, Any], name: str, kind, required: bool = True, default=None):
    if name not in body:
        if required:
            raise ApiError(400, "bad_request", f"missing field {name!r}")
        return default
    value = body[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)) or \
            kind is not int and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ApiError(400, "bad_request", f"field {name!r} must be {names}, got {type(value).__name__}")
    return value


def _addr(body: Dict[str, Any], name: str) -> str:
    value = _field(body, name, str)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ApiError(400, "bad_request", f"field {name!r} must be HOST:PORT, got {value!r}")
    return value


def _node_data(spec: Dict[str, Any]) -> Dict[str, str]:
    """A member's Node.data: its HTTP address, and its binary client address if it has one."""
    data = {"http": _addr(spec, "http")}
    if "client" in spec:
        data["client"] = _addr(spec, "client")
    return data


def _node_id(text: Any, what: str = "node id") -> int:
    try:
        i = int(text)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_request", f"{what} must be an integer, got {text!r}") from None
    if isinstance(text, bool) or i < 0:
        raise ApiError(400, "bad_request", f"{what} must be an integer >= 0, got {text!r}")
    return i


class KvServer:
    """The HTTP server of one node. `await server.start()` binds `host:port` (0: any free
    port; see `.port`); `await server.close()` stops it (the Raft node is the caller's).

    `request_timeout` bounds a key-value request; `membership_timeout` a membership call
    (adding a learner waits until it has caught up). A write that times out answers 500
    "outcome_unknown": it was submitted and may still apply.
    """

    def __init__(self, raft: Raft, state_machine: KvStateMachine, host: str = "127.0.0.1", port: int = 0, *,
                 ssl=None, request_timeout: float = 10.0, membership_timeout: float = 60.0, registry=None,
                 health_max_lag: int = 10000, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
                 watch_progress_interval: float = PROGRESS_INTERVAL) -> None:
        self.raft = raft
        self.sm = state_machine
        self.host = host
        self._port = port
        self.ssl = ssl
        self.scheme = "https" if ssl is not None else "http"
        self.request_timeout = request_timeout
        self.membership_timeout = membership_timeout
        self.health_max_lag = health_max_lag
        self.max_value_bytes = max_value_bytes
        self.metrics = KvMetrics(raft, state_machine, registry)
        self.watch_hub = WatchHub(state_machine)
        self.leases = LeaseKeeper(raft, state_machine)
        self.metrics.watch_hub, self.metrics.lease_keeper = self.watch_hub, self.leases
        self.watch_progress_interval = watch_progress_interval
        # A body may hold a value of max_value_bytes escaped in JSON (up to 6 bytes a character).
        self.client_max_size = max(1 << 20, 6 * max_value_bytes + 65536)
        self.http = HttpServer(self._route, self._count, max_body_bytes=self.client_max_size,
                               too_large=self._too_large, sweep_interval=min(1.0, request_timeout / 4))
        # Exact paths: {path: {method: handler}}; the path is also the metrics' route label.
        # Keys live under /v1/kv/ (see _route).
        self._routes = {
            "/v1/cluster/init": {"POST": self._init},
            "/v1/cluster/learners": {"POST": self._add_learner},
            "/v1/cluster/membership": {"PUT": self._change_membership},
            "/v1/cluster/transfer-leader": {"POST": self._transfer_leader},
            "/v1/cluster/snapshot": {"GET": self._backup},
            "/v1/cluster/status": {"GET": self._status},
            "/v1/health": {"GET": self._health},
            "/metrics": {"GET": self._metrics},
            "/v1/kv": {"GET": self._list, "DELETE": self._delete_range},
            "/v1/txn": {"POST": self._txn},
            "/v1/watch": {"GET": self._watch},
            "/v1/lease": {"POST": self._lease_grant},
        }
        # Answers counted here and added to the Prometheus counter by the sampler and at a
        # scrape: a labelled counter's inc() per request would cost more than the rest.
        self._counts: Dict[Tuple[str, int], int] = {}
        self._timeout_answers: Dict[str, Response] = {}
        self._sampler: Optional[asyncio.Task] = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> "KvServer":
        self._port = await self.http.start(self.host, self._port, self.ssl)
        self._started = True
        self.leases.start()
        self._sampler = asyncio.get_running_loop().create_task(self._sample())
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self._port}"

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        self.watch_hub.close()
        await self.leases.close()
        if self._started:
            self._started = False
            await self.http.close()

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while True:
            await asyncio.sleep(min(0.5, self.watch_progress_interval))
            self._fold_counts()
            self.metrics.observe()
            if loop.time() - last_progress >= self.watch_progress_interval:
                last_progress = loop.time()
                self.watch_hub.progress()

    def _count(self, route: str, status: int) -> None:
        key = (route, status)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _fold_counts(self) -> None:
        counts, self._counts = self._counts, {}
        for (route, status), n in counts.items():
            self.metrics.responses.labels(route, str(status)).inc(n)

    def _too_large(self) -> Response:
        return json_error(413, "too_large", f"the request body is over {self.client_max_size} bytes; keys and values "
                                            f"may have up to {self.max_value_bytes} bytes (serve --max-value-bytes)")

    # ------------------------------------------------------------------ routing and errors
    def _route(self, request: Request, slot: Slot):
        path = request.path
        method = request.method
        if path.startswith("/v1/kv/") and len(path) > 7:
            key = path[7:]
            if method == "POST" and key.endswith("/cas") and len(key) > 4:
                slot.route = "/v1/kv/{key}/cas"
                request.match_info["key"] = key[:-4]
                return self._guarded(self._cas, request)
            slot.route = "/v1/kv/{key}"
            request.match_info["key"] = key
            if method == "PUT":
                return self._put(request, slot)
            if method == "GET":
                return self._guarded(self._get, request)
            if method == "DELETE":
                return self._delete(request, slot)
            return json_error(405, "method_not_allowed", "Method Not Allowed",
                              {"Allow": "DELETE,GET,PUT" + (",POST" if key.endswith("/cas") else "")})
        methods = self._routes.get(path)
        if methods is None and path.startswith("/v1/lease/") and len(path) > 10:
            rest = path[10:]
            if rest.endswith("/keepalive"):
                request.match_info["id"] = rest[:-10]
                methods = {"POST": self._lease_keepalive}
                path = "/v1/lease/{id}/keepalive"
            elif "/" not in rest:
                request.match_info["id"] = rest
                methods = {"GET": self._lease_info, "DELETE": self._lease_revoke}
                path = "/v1/lease/{id}"
        if methods is None and path.startswith("/v1/cluster/nodes/") and "/" not in path[18:] and len(path) > 18:
            request.match_info["id"] = path[18:]
            methods = {"DELETE": self._remove_node}
            path = "/v1/cluster/nodes/{id}"
        if methods is None:
            return json_error(404, "not_found", "Not Found")
        handler = methods.get(method)
        if handler is None:
            return json_error(405, "method_not_allowed", "Method Not Allowed", {"Allow": ",".join(sorted(methods))})
        slot.route = path
        return self._guarded(handler, request)

    async def _guarded(self, handler, request: Request) -> Response:
        try:
            return await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._error(request, exc)

    def _error(self, request: Request, exc: BaseException) -> Response:
        """The answer for an exception out of a handler."""
        if isinstance(exc, ForwardToLeader):
            return self._redirect(request, exc)
        return json_error(*self.error_parts(exc, f"{request.method} {request.path}"))

    def error_parts(self, exc: BaseException, what: str = "a request") -> Tuple[int, str, str]:
        """(status, code, message) of any exception but a redirect, as both protocols answer it."""
        if isinstance(exc, ApiError):
            return exc.status, exc.code, exc.message
        if isinstance(exc, LeaseNotFound):
            return 404, "lease_not_found", str(exc)
        if isinstance(exc, (InvalidArgument, InvalidArgumentType)):
            return 400, "bad_request", str(exc)
        if isinstance(exc, RaftError):
            status, code = error_status(exc)
            if status >= 500 and code not in ("no_leader", "no_quorum", "leader_transferring"):
                _log.warning("node %s: %s: %s", self.raft.node_id, what, exc)
            return status, code, str(exc)
        _log.error("node %s: %s failed", self.raft.node_id, what, exc_info=exc)
        return 500, "internal", f"internal error: {exc!r}"

    def leader_http(self, leader_id: Optional[int]) -> Optional[str]:
        """The HTTP address of `leader_id` from the membership (None: unknown or this node)."""
        if leader_id is None or leader_id == self.raft.node_id:
            return None
        m = self.raft.metrics.membership
        node = None if m is None else m.get_node(leader_id)
        addr = None if node is None else node.data.get("http")
        return addr if isinstance(addr, str) and addr else None

    def _redirect(self, request: Request, exc: ForwardToLeader) -> Response:
        addr = self.leader_http(exc.leader_id)
        if addr is None:
            status, code = error_status(exc)
            return json_error(status, code, str(exc))
        location = f"{self.scheme}://{addr}{request.path_qs}"
        return json_error(307, "redirect", f"node {self.raft.node_id} is not the leader; leader {exc.leader_id} "
                                            f"is at {location}", headers={"Location": location})

    def _json(self, request: Request, *fields: str) -> Dict[str, Any]:
        """The request's JSON object; a field not among `fields` is refused (400
        "unknown_field"): a misspelled or unsupported option must not be ignored silently."""
        try:
            body = request.json()
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        unknown = sorted(k for k in body if k not in fields)
        if unknown:
            raise ApiError(400, "unknown_field", f"unknown field {unknown[0]!r} (this call takes "
                                                 f"{', '.join(repr(f) for f in fields)})")
        return body

    # ------------------------------------------------------------------ raft calls, bounded
    async def _bounded(self, fut, timeout: float, what: str, write: bool):
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            if write:
                raise OutcomeUnknown("timeout", f"{what}: no outcome within {timeout}s; it may still apply") from None
            raise ApiError(503, "timeout", f"{what}: no answer within {timeout}s (no quorum?)") from None

    async def _write(self, payload: bytes, op: str):
        t0 = time.monotonic()
        resp = await self._bounded(self.raft.client_write(payload), self.request_timeout, op, True)
        self.metrics.write_latency.observe(op, time.monotonic() - t0)
        if resp.data is None:
            raise ApiError(500, "internal", f"the state machine refused the {op} command")
        return resp.data

    def _submit(self, request: Request, slot: Slot, payload: bytes, op: str) -> None:
        """The write path of puts and deletes: the node answers a _WriteSink from the callback
        that applies the entry (no future, no task), and the sweep answers "outcome_unknown"
        after request_timeout."""
        answer = self._timeout_answers.get(op)
        if answer is None:      # made once per op (not through _error: nothing timed out yet, nothing to log)
            answer = self._timeout_answers[op] = json_error(
                500, "outcome_unknown", str(OutcomeUnknown("timeout", f"{op}: no outcome within {self.request_timeout}s; "
                                                                      f"it may still apply")))
        slot.on_timeout = answer
        t0 = time.monotonic()
        slot.deadline = t0 + self.request_timeout
        self.raft.client_write_into(payload, _WriteSink(self, request, slot, op, t0))

    def _written(self, sink: "_WriteSink", data) -> None:
        slot = sink.slot
        self.metrics.write_latency.observe(sink.op, time.monotonic() - sink.t0)
        if data is None:
            slot.answer(json_error(500, "internal", f"the state machine refused the {sink.op} command"))
        elif data == LEASE_NOT_FOUND:
            slot.answer(json_error(404, "lease_not_found", "the put names a lease that does not exist (never "
                                                           "granted, revoked or expired); nothing was written"))
        elif sink.op == "put":
            slot.answer_json_200(b'{"revision": %d}' % data)
        else:
            revision, deleted = data
            slot.answer(json_response({"revision": revision, "deleted": deleted}))

    async def _read_barrier(self, request: Request) -> None:
        name = request.query.get("consistency", "linearizable")
        if name not in CONSISTENCY:
            raise ApiError(400, "bad_request", f"consistency must be one of {', '.join(CONSISTENCY)}, got {name!r}")
        policy = CONSISTENCY[name]
        if policy is not None:
            await self._bounded(self.raft.ensure_linearizable(policy), self.request_timeout, "read", False)

    def _key(self, request: Request) -> str:
        return self._key_text(request.match_info["key"])

    def _key_text(self, key: str) -> str:
        try:
            commands.check_key(key)
        except InvalidArgument as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        return self._sized(key, "key")

    def _sized(self, text: str, what: str) -> str:
        if len(text) * 4 <= self.max_value_bytes:
            return text         # fits whatever it holds (UTF-8: at most 4 bytes a character)
        n = len(text.encode("utf-8", "surrogatepass"))
        if n > self.max_value_bytes:
            raise ApiError(413, "too_large", f"the {what} has {n} bytes; keys and values may have up to "
                                             f"{self.max_value_bytes} bytes (serve --max-value-bytes)")
        return text

    # ------------------------------------------------------------------ key-value routes
    def _put(self, request: Request, slot: Slot) -> Optional[Response]:
        try:
            key = self._key(request)
            plain = _PLAIN_PUT.match(request.body)
            lease = 0
            if plain is not None:
                value = plain.group(1).decode()     # the common body, without the JSON decoder
            else:
                body = self._json(request, "value", "lease")
                value = _field(body, "value", str)
                lease = _field(body, "lease", int, required=False, default=0)
                if lease < 0:
                    raise ApiError(400, "bad_request", "field 'lease' must be a lease id (>= 1), or 0 for none")
            value = self._sized(value, "value")
        except UnicodeDecodeError:
            return json_error(400, "bad_request", "the body is not valid JSON: it is not UTF-8")
        except ApiError as exc:
            return self._error(request, exc)
        self._submit(request, slot, commands.put(key, value, lease), "put")
        return None

    async def _get(self, request: Request) -> Response:
        key = self._key(request)
        await self._read_barrier(request)
        item = self.sm.get(key)
        if item is None:
            raise ApiError(404, "key_not_found", f"key {key!r} not found")
        return json_response({"value": item.value, "revision": item.revision})

    def _delete(self, request: Request, slot: Slot) -> Optional[Response]:
        try:
            key = self._key(request)
        except ApiError as exc:
            return self._error(request, exc)
        self._submit(request, slot, commands.delete(key), "delete")
        return None

    async def _cas(self, request: Request) -> Response:
        key = self._key(request)
        body = self._json(request, "value", "expected", "expected_revision")
        value = self._sized(_field(body, "value", str), "value")
        if ("expected" in body) == ("expected_revision" in body):
            raise ApiError(400, "bad_request", "give exactly one of 'expected' (a string or null) and "
                                               "'expected_revision' (an integer, 0: absent)")
        if "expected" in body:
            expected = body["expected"]
            if expected is not None and not isinstance(expected, str):
                raise ApiError(400, "bad_request", "field 'expected' must be a string or null")
            payload = commands.cas(key, expected, value)
        else:
            rev = _field(body, "expected_revision", int)
            if rev < 0:
                raise ApiError(400, "bad_request", "field 'expected_revision' must be >= 0")
            payload = commands.cas_revision(key, rev, value)
        ok, revision, current = await self._write(payload, "cas")
        if ok:
            return json_response({"ok": True, "revision": revision})
        return json_response({"ok": False, "value": current, "revision": revision})

    async def _delete_range(self, request: Request) -> Response:
        """DELETE /v1/kv?prefix=p: every key under a non-empty prefix, in one entry."""
        if "prefix" not in request.query:
            raise ApiError(400, "bad_request", "DELETE /v1/kv takes ?prefix=... (a key is deleted at /v1/kv/{key})")
        revision, deleted = await self._write(commands.delete_range(request.query["prefix"]), "delete_range")
        return json_response({"revision": revision, "deleted": deleted})

    async def _txn(self, request: Request) -> Response:
        """POST /v1/txn: compares, then one branch of ops, in one entry (kv.txn)."""
        payload, parsed = txn.txn_command(self._json(request, "compare", "success", "failure"), self._sized)
        return json_response(txn.answer_json(parsed, await self._write(payload, "txn")))

    async def _watch(self, request: Request) -> Any:
        """GET /v1/watch?prefix=p|key=k[&from_revision=r]: a stream of JSON lines (kv.watch)."""
        q = request.query
        if ("prefix" in q) == ("key" in q):
            raise ApiError(400, "bad_request", "give exactly one of prefix= and key=")
        exact = "key" in q
        pattern = self._key_text(q["key"]) if exact else q["prefix"]
        from_revision = None
        if "from_revision" in q:
            from_revision = _node_id(q["from_revision"], "from_revision")
            if from_revision < 1:
                raise ApiError(400, "bad_request", "from_revision must be >= 1")
        try:
            watcher = self.watch_hub.watch(pattern, exact, from_revision)
        except CompactedRevision as exc:
            return json_response({"error": {"code": "compacted", "message": str(exc),
                                            "compacted_revision": exc.compacted_revision},
                                  "compacted_revision": exc.compacted_revision}, 410)
        return StreamResponse("application/x-ndjson", lambda stream: watcher.attach(stream.write, stream.buffered,
                                                                                     stream.end), watcher.close)

    # ------------------------------------------------------------------ leases (kv.leases)
    def _lease_id(self, request: Request) -> int:
        lease = _node_id(request.match_info["id"], "lease id")
        if lease < 1:
            raise ApiError(400, "bad_request", "a lease id is >= 1")
        return lease

    async def _lease_grant(self, request: Request) -> Response:
        return json_response(await self.lease_grant(_field(self._json(request, "ttl"), "ttl", (int, float))))

    async def _lease_keepalive(self, request: Request) -> Response:
        return json_response(await self.lease_keepalive(self._lease_id(request)))

    async def _lease_revoke(self, request: Request) -> Response:
        return json_response(await self.lease_revoke(self._lease_id(request)))

    async def _lease_info(self, request: Request) -> Response:
        return json_response(await self.lease_info(self._lease_id(request)))

    # The lease calls of both protocols: their answers' bodies.
    async def lease_grant(self, ttl) -> Dict[str, Any]:
        lease, ttl = await self._write(commands.lease_grant(ttl), "lease_grant")
        return {"id": lease, "ttl": ttl}

    async def lease_keepalive(self, lease: int) -> Dict[str, Any]:
        self._require_leader()
        try:
            return {"ttl": await self.leases.keepalive(commands.check_lease(lease), self.request_timeout)}
        except asyncio.TimeoutError:
            raise ApiError(503, "timeout", f"keepalive: no answer within {self.request_timeout}s (no quorum?)") from None

    async def lease_revoke(self, lease: int) -> Dict[str, Any]:
        revision, revoked, deleted = await self._write(commands.lease_revoke(lease), "lease_revoke")
        if not revoked:
            raise LeaseNotFound(f"lease {lease} does not exist (never granted, revoked or expired)")
        return {"revision": revision, "deleted": deleted}

    async def lease_info(self, lease: int) -> Dict[str, Any]:
        """The lease's TTL, the time left as the leader counts it, and its keys."""
        commands.check_lease(lease)
        self._require_leader()
        await self._bounded(self.raft.ensure_linearizable(ReadPolicy.LEASE_READ | ReadPolicy.READ_INDEX),
                            self.request_timeout, "lease", False)
        self._require_leader()
        table = self.sm.leases
        if lease not in table:
            raise LeaseNotFound(f"lease {lease} does not exist (never granted, revoked or expired)")
        remaining = self.leases.remaining(lease)
        return {"id": lease, "ttl": table.ttl[lease],
                "remaining": table.ttl[lease] if remaining is None else round(remaining, 3),
                "keys": sorted(table.keys[lease])}

    async def _list(self, request: Request) -> Response:
        prefix = request.query.get("prefix", "")
        limit = request.query.get("limit")
        n = None if limit is None else _node_id(limit, "limit")
        await self._read_barrier(request)
        return json_response({"items": [{"key": k, "value": v, "revision": r} for k, v, r in
                                            self.sm.list(prefix, n)]})

    # ------------------------------------------------------------------ cluster routes
    def _require_leader(self) -> None:
        """Membership calls go to the leader: elsewhere raise ForwardToLeader (a 307 or a 503)."""
        if not self.raft.is_leader():
            leader = self.raft.current_leader()
            m = self.raft.metrics.membership
            raise ForwardToLeader(leader, None if m is None or leader is None else m.get_node(leader))

    async def _init(self, request: Request) -> Response:
        nodes = _field(self._json(request, "nodes"), "nodes", dict)
        if not nodes:
            raise ApiError(400, "bad_request", "field 'nodes' must name at least one node")
        members = {}
        for key, spec in nodes.items():
            if not isinstance(spec, dict):
                raise ApiError(400, "bad_request", f"nodes[{key!r}] must be an object with 'raft' and 'http'")
            unknown = sorted(set(spec) - {"raft", "http", "client"})
            if unknown:
                raise ApiError(400, "unknown_field", f"nodes[{key!r}]: unknown field {unknown[0]!r} (a node takes "
                                                     f"'raft', 'http' and optionally 'client')")
            members[_node_id(key)] = Node(_addr(spec, "raft"), _node_data(spec))
        await self._bounded(self.raft.initialize(members), self.request_timeout, "init", False)
        _log.info("node %s: cluster initialized with voters %s", self.raft.node_id, sorted(members))
        return json_response({"voters": sorted(members)})

    def _membership_json(self, resp) -> Dict[str, Any]:
        m = resp.membership if resp.membership is not None else self.raft.metrics.membership
        return {"log_index": None if resp.log_id is None else resp.log_id.index,
                "voters": sorted(m.voter_ids) if m is not None else [],
                "learners": sorted(m.learner_ids) if m is not None else []}

    async def _add_learner(self, request: Request) -> Response:
        body = self._json(request, "id", "raft", "http", "client", "timeout")
        node_id = _node_id(_field(body, "id", int))
        node = Node(_addr(body, "raft"), _node_data(body))
        timeout = _field(body, "timeout", (int, float), required=False, default=LEARNER_TIMEOUT)
        if isinstance(timeout, bool) or not 0 < timeout <= self.membership_timeout:
            raise ApiError(400, "bad_request", f"field 'timeout' must be seconds in (0, {self.membership_timeout:g}], "
                                               f"got {timeout!r}")
        self._require_leader()
        m = self.raft.metrics.membership
        old = None if m is None else m.get_node(node_id)
        if m is not None and old is not None:
            if (old.addr, old.data) != (node.addr, node.data):
                raise ApiError(409, "already_member", f"node {node_id} is already a member at raft {old.addr}, http "
                                                      f"{old.data.get('http')}; remove it first to move it")
            mid = self.raft.metrics.membership_log_id
            return json_response({"log_index": None if mid is None else mid.index, "voters": sorted(m.voter_ids),
                                      "learners": sorted(m.learner_ids),
                                      "unchanged": f"node {node_id} is already a member with these addresses"})
        try:
            resp = await self._bounded(self.raft.add_learner(node_id, node, blocking=True, timeout=timeout),
                                       self.membership_timeout, "add learner", True)
        except Timeout as exc:          # added, but not caught up: say so, it is no failure to retry
            raise ApiError(409, "learner_not_caught_up", str(exc)) from None
        _log.info("node %s: learner %s added at %s", self.raft.node_id, node_id, node.addr)
        return json_response(self._membership_json(resp))

    async def _change_membership(self, request: Request) -> Response:
        body = self._json(request, "voters", "retain", "force")
        voters = _field(body, "voters", list)
        if not voters:
            raise ApiError(400, "bad_request", "field 'voters' must name at least one node")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in voters):
            raise ApiError(400, "bad_request", f"field 'voters' must be a list of node ids (integers >= 0), got {voters!r}")
        ids = list(voters)
        retain = _field(body, "retain", bool, required=False, default=False)
        force = _field(body, "force", bool, required=False, default=False)
        self._require_leader()
        resp = await self._bounded(self.raft.change_membership(ids, retain, force), self.membership_timeout,
                                   "change membership", True)
        _log.info("node %s: membership changed: voters %s", self.raft.node_id, sorted(ids))
        return json_response(self._membership_json(resp))

    async def _backup(self, request: Request) -> Response:
        """GET /v1/cluster/snapshot: a backup (kv.backup) of the state at a linearizable point,
        taken on the leader: the state it has applied once a read-index round confirmed it."""
        from openraft_fast.kv.backup import pack_backup
        self._require_leader()
        await self._bounded(self.raft.ensure_linearizable(ReadPolicy.READ_INDEX), self.request_timeout,
                            "snapshot", False)
        applied = self.sm.applied
        if applied is None:
            raise ApiError(503, "no_leader", "nothing applied yet")
        keys = len(self.sm)
        state = await self.sm.serialize_async()     # the state as it is now, with `applied` (no await between)
        return Response(200, pack_backup(applied, keys, state), "application/octet-stream",
                        headers={"X-Revision": str(applied.index), "X-Keys": str(keys)})

    async def _remove_node(self, request: Request) -> Response:
        """DELETE /v1/cluster/nodes/{id}[?force=true]: out of the voters and learners, answered
        once applied. The leader removing itself hands over first and redirects (307)."""
        node_id = _node_id(request.match_info["id"])
        force = request.query.get("force", "false")
        if force not in ("true", "false"):
            raise ApiError(400, "bad_request", f"force must be true or false, got {force!r}")
        self._require_leader()
        resp = await self._bounded(self.raft.remove_node(node_id, force == "true"), self.membership_timeout,
                                   "remove node", True)
        _log.info("node %s: node %s removed", self.raft.node_id, node_id)
        return json_response(self._membership_json(resp))

    async def _transfer_leader(self, request: Request) -> Response:
        to = _node_id(_field(self._json(request, "to"), "to", int))
        self._require_leader()
        m = self.raft.metrics.membership
        if m is None or not m.is_voter(to):
            raise ApiError(400, "bad_request", f"node {to} is not a voter")
        if to != self.raft.node_id:
            await self.raft.trigger.transfer_leader(to)
            wait = 10 * self.raft.config.election_timeout_max
            try:
                await self.raft.wait(wait).current_leader(to)
            except Timeout:
                raise ApiError(503, "timeout", f"node {to} did not take over within {wait:.1f}s") from None
        return json_response({"leader": to})

    async def _status(self, request: Request) -> Response:
        return json_response(node_status(self.raft))

    async def _health(self, request: Request) -> Response:
        """200 when this node is fit to serve, else 503 with a `reason` (Raft.health); no Raft
        round trip, so a load balancer may ask often."""
        h = self.raft.health(self.health_max_lag)
        return json_response(h, status=200 if h["ok"] else 503)

    async def _metrics(self, request: Request) -> Response:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST
        self._fold_counts()
        return Response(200, self.metrics.exposition(), CONTENT_TYPE_LATEST)


class _WriteSink(WriteSink):
    """A put's or delete's answer over HTTP (Raft.client_write_into)."""
    __slots__ = ("server", "request", "slot", "op", "t0")

    def __init__(self, server: KvServer, request: Request, slot: Slot, op: str, t0: float) -> None:
        super().__init__()
        self.server = server
        self.request = request
        self.slot = slot
        self.op = op
        self.t0 = t0

    def ok(self, data) -> None:
        if self.slot.data is None:          # else the sweep answered outcome_unknown already
            self.server._written(self, data)

    def fail(self, exc: BaseException) -> None:
        self.slot.answer(self.server._error(self.request, exc))


def node_status(raft: Raft) -> Dict[str, Any]:
    """A node's metrics as the JSON of `GET /v1/cluster/status`."""
    m = raft.metrics
    mem = m.membership
    idx = lambda log_id: None if log_id is None else log_id.index  # noqa: E731
    replication = None
    if m.replication is not None:
        replication = {str(t): {"matched": idx(mid), "lag": m.last_log_index - (idx(mid) or 0)}
                       for t, mid in sorted(m.replication.items()) if t != m.id}
    return {
        "id": m.id,
        "state": m.state.name.lower(),
        "term": m.current_term,
        "leader": m.current_leader,
        "last_log": m.last_log_index,
        "committed": idx(m.committed),
        "applied": idx(m.last_applied),
        "snapshot": idx(m.snapshot),
        "purged": idx(m.purged),
        "voters": sorted(mem.voter_ids) if mem is not None else [],
        "learners": sorted(mem.learner_ids) if mem is not None else [],
        "joint": bool(mem is not None and mem.is_joint),
        "nodes": {str(i): {"raft": n.addr, "http": n.data.get("http"),
                           **({"client": n.data["client"]} if n.data.get("client") else {})}
                  for i, n in sorted((mem.nodes if mem is not None else {}).items())},
        "replication": replication,
    }
