"""The KV service's binary client protocol (`serve --client HOST:PORT`; `KvClient("orf://...")`).

Frames of our codec (docs/wire.md) both ways: a `ClientRequest` whose data is the msgpack array
[op, args...], answered by a `ClientResponse` of the same correlation id whose data is msgpack
[status, body]. Status and body are those of the HTTP API (docs/kv.md): 200 with the same body,
the same error bodies {"error": {"code", "message"}}, and 307 {"error": ..., "leader": id,
"location": "orf://host:port" or None} from a follower for a write (the location is the
leader's `client` address in the membership, when it has one). Many requests may be in
flight on a connection; answers come in any order, matched by id; the answers of one loop
iteration leave in one write.

| op | request | 200 body |
|---|---|---|
| 1 put | [1, key, value(, lease)] | {"revision"}; 404 lease_not_found |
| 2 delete | [2, key] | {"revision", "deleted"} |
| 3 cas on value | [3, key, expected or None, value] | {"ok", "revision"[, "value"]} |
| 4 cas on revision | [4, key, expected_revision, value] | the same |
| 5 get | [5, key, consistency] | {"value", "revision"}; 404 key_not_found |
| 6 list | [6, prefix, consistency, limit or None] | {"items": [{"key", "value", "revision"}]} |
| 7 status | [7] | GET /v1/cluster/status's body |
| 8 transaction | [8, {"compare", "success", "failure"}] | {"succeeded", "revision", "results"} (kv.txn) |
| 9 range delete | [9, prefix] | {"revision", "deleted"} |
| 10 lease grant | [10, ttl] | {"id", "ttl"} |
| 11 lease keepalive | [11, id] | {"ttl"}; 404 lease_not_found |
| 12 lease revoke | [12, id] | {"revision", "deleted"}; 404 lease_not_found |
| 13 lease info | [13, id] | {"id", "ttl", "remaining", "keys"} |
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Deque, Dict, Optional, Tuple

import msgpack

from openraft_fast._core.codec import ClientRequest, ClientResponse
from openraft_fast.errors import ForwardToLeader, InvalidArgument, InvalidArgumentType
from openraft_fast.kv import commands, txn
from openraft_fast.kv.listener import Listener, WriteSink
from openraft_fast.kv.txn import LEASE_NOT_FOUND
from openraft_fast.network.tcp.frames import FrameConnection

_log = logging.getLogger("openraft_fast.kv")

(OP_PUT, OP_DELETE, OP_CAS_VALUE, OP_CAS_REVISION, OP_GET, OP_LIST, OP_STATUS, OP_TXN, OP_DELETE_RANGE,
 OP_LEASE_GRANT, OP_LEASE_KEEPALIVE, OP_LEASE_REVOKE, OP_LEASE_INFO) = range(1, 14)
_OP_NAMES = {OP_PUT: "put", OP_DELETE: "delete", OP_TXN: "txn", OP_DELETE_RANGE: "delete_range"}
# A request frame is small; a list answer may be big.
MAX_FRAME = 64 << 20
MAX_BUFFERED = 64 << 20

_pack = msgpack.Packer().pack         # one Packer: msgpack.packb builds one per call
# [200, {"revision": <int>}] without its last element: a put's answer is this plus the revision.
_PUT_OK = _pack([200, {"revision": 0}])[:-1]


def answer(status: int, body: Dict[str, Any]) -> bytes:
    return _pack([status, body])


def error(status: int, code: str, message: str, **extra: Any) -> bytes:
    return _pack([status, {"error": {"code": code, "message": message}, **extra}])


class ClientConnection(FrameConnection):
    """One client's connection: requests in, answers out (any order, by correlation id)."""

    def __init__(self, server: "KvBinaryServer") -> None:
        super().__init__(MAX_FRAME, MAX_BUFFERED)
        self.server = server

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.server.connections.add(self)

    def frame_received(self, corr_id: int, msg: Any) -> None:
        if type(msg) is not ClientRequest:
            self.close(f"expected a ClientRequest, got {type(msg).__name__}")
            return
        self.server.handle(self, corr_id, msg.data)

    def reply(self, corr_id: int, data: bytes) -> None:
        if not self.closed:
            self.send(ClientResponse(data), corr_id)

    def lost(self, reason: str) -> None:
        self.server.connections.discard(self)


class _Sink(WriteSink):
    """A write's answer over the binary protocol (Raft.client_write_into)."""
    __slots__ = ("server", "conn", "corr_id", "op", "t0", "parsed")

    def __init__(self, server: "KvBinaryServer", conn: ClientConnection, corr_id: int, op: int, t0: float,
                 parsed=None) -> None:
        super().__init__()
        self.server = server
        self.conn = conn
        self.corr_id = corr_id
        self.op = op
        self.t0 = t0
        self.parsed = parsed            # a transaction's parsed request, to shape its answer

    def ok(self, data) -> None:
        self.conn.reply(self.corr_id, self.server.written(self, data))

    def fail(self, exc: BaseException) -> None:
        self.conn.reply(self.corr_id, self.server.error_answer(exc))


class KvBinaryServer(Listener):
    """Serves the binary protocol for a KvServer (same node, state machine, limits, metrics)."""

    def __init__(self, kv, host: str = "127.0.0.1", port: int = 0, *, ssl=None) -> None:
        super().__init__()
        self.kv = kv
        self.raft = kv.raft
        self.sm = kv.sm
        self.host = host
        self._port = port
        self.ssl = ssl
        self.sweep_interval = min(1.0, kv.request_timeout / 4)
        self._pending: Deque[Tuple[float, _Sink]] = deque()    # writes by deadline (one timeout for all)
        self._timeout_answer = error(500, "outcome_unknown", f"no outcome within {kv.request_timeout}s; the write "
                                                             f"may still apply")

    async def start(self) -> "KvBinaryServer":
        self._port = await self.listen(lambda: ClientConnection(self), self.host, self._port, self.ssl)
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'orfs' if self.ssl is not None else 'orf'}://{self.host}:{self._port}"

    def sweep(self) -> None:
        now = time.monotonic()
        pending = self._pending
        while pending and (pending[0][1].answered or pending[0][0] <= now):
            _, sink = pending.popleft()
            if not sink.answered:
                sink.answered = True
                sink.conn.reply(sink.corr_id, self._timeout_answer)

    # ------------------------------------------------------------------ requests
    def handle(self, conn: ClientConnection, corr_id: int, data) -> None:
        try:
            req = msgpack.unpackb(data)
            op = req[0]
        except Exception:
            conn.reply(corr_id, error(400, "bad_request", "the request is not a msgpack array [op, args...]"))
            return
        try:
            if op == OP_PUT and 3 <= len(req) <= 4:
                self._write(conn, corr_id, op, commands.put(self._key(req[1]), self._value(req[2], "value"),
                                                            req[3] if len(req) == 4 else 0))
            elif op == OP_DELETE and len(req) == 2:
                self._write(conn, corr_id, op, commands.delete(self._key(req[1])))
            elif op == OP_CAS_VALUE and len(req) == 4:
                expected = req[2] if req[2] is None else self._value(req[2], "expected")
                self._write(conn, corr_id, op, commands.cas(self._key(req[1]), expected, self._value(req[3], "value")))
            elif op == OP_CAS_REVISION and len(req) == 4:
                self._write(conn, corr_id, op, commands.cas_revision(self._key(req[1]), req[2],
                                                                     self._value(req[3], "value")))
            elif op == OP_GET and len(req) == 3:
                key = self._key(req[1])
                self._read(conn, corr_id, req[2], lambda: self._get(key))
            elif op == OP_LIST and len(req) == 4:
                prefix, limit = req[1], req[3]
                if not isinstance(prefix, str) or not (limit is None or type(limit) is int and limit >= 0):
                    raise InvalidArgument("list takes a str prefix and a limit that is None or an integer >= 0")
                self._read(conn, corr_id, req[2], lambda: answer(200, {"items": [
                    {"key": k, "value": v, "revision": r} for k, v, r in self.sm.list(prefix, limit)]}))
            elif op == OP_TXN and len(req) == 2:
                payload, parsed = txn.txn_command(req[1], self.kv._sized)
                self._write(conn, corr_id, op, payload, parsed)
            elif op == OP_DELETE_RANGE and len(req) == 2:
                self._write(conn, corr_id, op, commands.delete_range(req[1]))
            elif op == OP_LEASE_GRANT and len(req) == 2:
                self._answer_later(conn, corr_id, self.kv.lease_grant(req[1]))
            elif op == OP_LEASE_KEEPALIVE and len(req) == 2:
                self._answer_later(conn, corr_id, self.kv.lease_keepalive(req[1]))
            elif op == OP_LEASE_REVOKE and len(req) == 2:
                self._answer_later(conn, corr_id, self.kv.lease_revoke(commands.check_lease(req[1])))
            elif op == OP_LEASE_INFO and len(req) == 2:
                self._answer_later(conn, corr_id, self.kv.lease_info(req[1]))
            elif op == OP_STATUS and len(req) == 1:
                from openraft_fast.kv.server import node_status
                conn.reply(corr_id, answer(200, node_status(self.raft)))
            else:
                conn.reply(corr_id, error(400, "bad_request", f"unknown op or wrong arguments: {req[:1]!r} with "
                                                              f"{len(req) - 1} arguments"))
        except Exception as exc:
            conn.reply(corr_id, self.error_answer(exc))

    def _key(self, key) -> str:
        commands.check_key(key)
        return self._value(key, "key")

    def _value(self, text, what: str) -> str:
        if not isinstance(text, str):
            raise InvalidArgumentType(f"{what} must be a str, got {type(text).__name__}")
        return self.kv._sized(text, what)

    def _write(self, conn: ClientConnection, corr_id: int, op: int, payload: bytes, parsed=None) -> None:
        t0 = time.monotonic()
        sink = _Sink(self, conn, corr_id, op, t0, parsed)
        self._pending.append((t0 + self.kv.request_timeout, sink))
        self.raft.client_write_into(payload, sink)

    def written(self, sink: _Sink, data) -> bytes:
        """The answer to an applied write (what the state machine answered)."""
        op = sink.op
        self.kv.metrics.write_latency.observe(_OP_NAMES.get(op, "cas"), time.monotonic() - sink.t0)
        if data is None:
            return error(500, "internal", "the state machine refused the command")
        if data == LEASE_NOT_FOUND:
            return error(404, "lease_not_found", "the write names a lease that does not exist; nothing was written")
        if op == OP_PUT:
            return _PUT_OK + _pack(data)
        if op == OP_DELETE or op == OP_DELETE_RANGE:
            return answer(200, {"revision": data[0], "deleted": data[1]})
        if op == OP_TXN:
            return answer(200, txn.answer_json(sink.parsed, data))      # data is no LEASE_NOT_FOUND here
        ok, revision, current = data
        return answer(200, {"ok": True, "revision": revision} if ok else
                      {"ok": False, "value": current, "revision": revision})

    def _answer_later(self, conn: ClientConnection, corr_id: int, call) -> None:
        """Answer with what the coroutine `call` returns (a body), or with its error."""
        async def run() -> None:
            try:
                body = await call
            except Exception as exc:
                conn.reply(corr_id, self.error_answer(exc))
                return
            conn.reply(corr_id, answer(200, body))
        self.spawn(run())

    def _get(self, key: str) -> bytes:
        item = self.sm.get(key)
        if item is None:
            return error(404, "key_not_found", f"key {key!r} not found")
        return answer(200, {"value": item.value, "revision": item.revision})

    def _read(self, conn: ClientConnection, corr_id: int, consistency, respond) -> None:
        from openraft_fast.kv.server import CONSISTENCY
        if consistency not in CONSISTENCY:
            raise InvalidArgument(f"consistency must be one of {', '.join(CONSISTENCY)}, got {consistency!r}")
        policy = CONSISTENCY[consistency]
        if policy is None:
            conn.reply(corr_id, respond())
            return

        async def barrier_then_respond():
            try:
                await asyncio.wait_for(self.raft.ensure_linearizable(policy), self.kv.request_timeout)
            except asyncio.TimeoutError:
                conn.reply(corr_id, error(503, "timeout", f"read: no answer within {self.kv.request_timeout}s "
                                                          f"(no quorum?)"))
                return
            except Exception as exc:
                conn.reply(corr_id, self.error_answer(exc))
                return
            conn.reply(corr_id, respond())
        self.spawn(barrier_then_respond())

    def error_answer(self, exc: BaseException) -> bytes:
        if isinstance(exc, ForwardToLeader) and exc.leader_id is not None and exc.leader_id != self.raft.node_id:
            return error(307, "redirect", f"node {self.raft.node_id} is not the leader; leader {exc.leader_id}",
                         leader=exc.leader_id, location=self.leader_client(exc.leader_id))
        if isinstance(exc, ForwardToLeader):
            from openraft_fast.kv.server import error_status
            status, code = error_status(exc)        # no leader to send the client to
            return error(status, code, str(exc))
        return error(*self.kv.error_parts(exc, "a binary request"))

    def leader_client(self, leader_id: int) -> Optional[str]:
        """orf(s)://host:port of the leader's client port, from its `client` in the membership."""
        m = self.raft.metrics.membership
        node = None if m is None else m.get_node(leader_id)
        addr = None if node is None else node.data.get("client")
        if not isinstance(addr, str) or not addr:
            return None
        return f"{'orfs' if self.ssl is not None else 'orf'}://{addr}"
