"""Forwarded writes: a follower hands client writes to the leader over the Raft transport
(`Raft.client_write(data, forward=True)`), and the leader answers with what its own
client_write answered.

The outcome rules hold end to end, so a caller can tell "not done" from "maybe done":
- Refused before a leader appended it (the leader answered ForwardToLeader, the leader was
  unreachable, no leader was known): nothing was appended, so the call retries by itself, at
  the leader named in the refusal or the next one elected, until its timeout; then it raises
  the last ForwardToLeader.
- Appended by the leader, outcome unknown there: OutcomeUnknown with the leader's reason.
- Delivered (or possibly delivered) to the leader, but no answer came back (the connection
  broke, the answer timed out): OutcomeUnknown("no_response").

Wire format: docs/wire.md, "Bodies".
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterator, List, Optional

import msgpack

from openraft_fast._core.messages import (FORWARD_OK, FORWARD_REFUSED, FORWARD_UNKNOWN, ForwardRequest,
                                          ForwardResponse)
from openraft_fast._core.types import LeaderId, LogId
from openraft_fast._core.writes import ClientWriteResponse
from openraft_fast.errors import (ApplyError, Fatal, ForwardToLeader, InvalidArgument, NetworkError, OutcomeUnknown,
                                  RaftError, Timeout, Unreachable)
from openraft_fast.network.base import NotCarried
from openraft_fast.runtime.reads import _bounded
from openraft_fast.storage._codec import dec_leader, enc_leader

log = logging.getLogger("openraft_fast")

EXT_APPLY_ERROR = 1     # msgpack ExtType code of an ApplyError in a forwarded response


class ForwardedBatchResponses:
    """client_write_many's outcome when the batch was forwarded: like BatchWriteResponses,
    one response per entry (an ApplyError instance for an entry the state machine refused)."""

    __slots__ = ("leader_id", "first_index", "data")

    def __init__(self, leader_id: LeaderId, first_index: int, data: List[Any]) -> None:
        self.leader_id = leader_id
        self.first_index = first_index
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def log_id(self, i: int) -> LogId:
        n = len(self.data)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return LogId(self.leader_id, self.first_index + i)

    def __getitem__(self, i: int) -> ClientWriteResponse:
        return ClientWriteResponse(self.log_id(i), self.data[i])

    def __iter__(self) -> Iterator[ClientWriteResponse]:
        for i in range(len(self.data)):
            yield self[i]

    @property
    def last_log_id(self) -> Optional[LogId]:
        return self.log_id(-1) if self.data else None


# ---------------------------------------------------------------------- encoding
def _ext(value):
    if isinstance(value, ApplyError):
        return msgpack.ExtType(EXT_APPLY_ERROR, msgpack.packb([value.kind, value.message, value.data],
                                                              use_bin_type=True))
    raise TypeError(f"cannot send a {type(value).__name__} response")


def _ext_hook(code: int, data: bytes):
    if code == EXT_APPLY_ERROR:
        kind, message, detail = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return ApplyError(message, kind, detail)
    return msgpack.ExtType(code, data)


def _pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=_ext)


def _unpack(data):
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False, ext_hook=_ext_hook)


def _pack_responses(node_id, leader_id, first_index: int, responses: List[Any]) -> bytes:
    try:
        return _pack([enc_leader(leader_id), first_index, responses])
    except (TypeError, ValueError, OverflowError) as exc:
        # One answer msgpack cannot pack: send the others, nil for it (the write did apply).
        log.warning("node %s: a forwarded write's response cannot be sent (%s); the caller gets None", node_id, exc)
        out = []
        for r in responses:
            try:
                _pack(r)
                out.append(r)
            except (TypeError, ValueError, OverflowError):
                out.append(None)
        return _pack([enc_leader(leader_id), first_index, out])


# ---------------------------------------------------------------------- the leader's side
def serve_forward(core, req: ForwardRequest, fut: asyncio.Future) -> None:
    """Write a follower's payloads as this node's own client writes and answer with their
    outcome (callbacks, no task per request); never raise into the transport."""
    try:
        payloads = msgpack.unpackb(req.data, raw=False, use_list=True)
        if not isinstance(payloads, list) or not payloads or not all(type(p) is bytes for p in payloads):
            raise ValueError("not a non-empty list of bytes")
        if not req.batch and len(payloads) != 1:
            raise ValueError(f"a single write with {len(payloads)} payloads")
    except Exception as exc:
        fut.set_exception(InvalidArgument(f"malformed forwarded write: {exc}"))
        return
    done = core.write_many(payloads) if req.batch else core.write(payloads[0])
    done.add_done_callback(lambda d: _answer(core, req.batch, d, fut))


def _answer(core, batch: bool, done: asyncio.Future, fut: asyncio.Future) -> None:
    if fut.done():
        return
    if done.cancelled():
        fut.cancel()
        return
    exc = done.exception()
    if exc is None:
        r = done.result()
        if batch:
            if not len(r):
                fut.set_result(ForwardResponse(FORWARD_OK, -1, _pack([None, 0, []])))
                return
            first = r.log_id(0)
            responses = list(r.data)
        else:
            first = r.log_id
            responses = [r.data]
        fut.set_result(ForwardResponse(FORWARD_OK, -1,
                                       _pack_responses(core.node_id, first.leader_id, first.index, responses)))
    elif isinstance(exc, ApplyError):
        # A single write the state machine refused: applied, the caller gets the error.
        fut.set_result(ForwardResponse(FORWARD_OK, -1, _pack([None, 0, [exc]])))
    elif isinstance(exc, ForwardToLeader):
        leader = exc.leader_id
        fut.set_result(ForwardResponse(FORWARD_REFUSED, -1 if leader is None else leader,
                                       _pack([exc.reason, exc.detail])))
    elif isinstance(exc, OutcomeUnknown):
        fut.set_result(ForwardResponse(FORWARD_UNKNOWN, -1, _pack([exc.reason, exc.detail])))
    elif isinstance(exc, Fatal):
        # A stopped node fails with Fatal only writes it never appended (the appended ones get
        # OutcomeUnknown("stopped")): the caller may go on to the next leader.
        fut.set_result(ForwardResponse(FORWARD_REFUSED, -1, _pack([ForwardToLeader.NOT_LEADER, str(exc)])))
    else:
        fut.set_exception(exc)


# ---------------------------------------------------------------------- the follower's side
def forward_write(core, payloads: List[bytes], batch: bool, timeout: Optional[float]) -> asyncio.Future:
    """The executor's `forward_write`: a task that writes `payloads` through the leader."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout < float("inf")):
        raise InvalidArgument(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return core.loop.create_task(_forwarded(core, payloads, batch, timeout))


async def _forwarded(core, payloads: List[bytes], batch: bool, timeout: Optional[float]):
    loop = core.loop
    cfg = core.config
    deadline = loop.time() + (10 * cfg.election_timeout_max if timeout is None else timeout)
    hint: Optional[int] = None          # a leader a refusal named, tried next
    hinted: Optional[int] = None        # ... the last one so tried (no ping-pong between two)
    while True:
        if core.stopped is not None:
            raise core.stopped
        engine = core.engine
        if engine.is_leader():
            tried = core.node_id
            try:
                return await (core.write_many(payloads) if batch else core.write(payloads[0]))
            except ForwardToLeader as exc:
                refusal = exc
        else:
            tried = hint if hint is not None else engine.leader_id
            hint = None
            if tried is None:
                refusal = ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, "no leader known")
            else:
                outcome = await core.forwarder.submit(tried, payloads)
                if not isinstance(outcome, ForwardToLeader):
                    return _result(outcome, batch)
                refusal = outcome
        named = refusal.leader_id
        if named is not None and named not in (tried, hinted, core.node_id):
            hint = hinted = named       # the refusal names another leader: go there at once
            continue
        if loop.time() >= deadline:
            raise refusal
        await _leader_change(core, tried, min(cfg.heartbeat_interval * 2, deadline - loop.time()))


async def _attempt(core, target: int, req: ForwardRequest):
    """One try at `target`: the leader's ForwardResponse, or a ForwardToLeader when the write
    was certainly not appended. Raises OutcomeUnknown when it may have been."""
    engine = core.engine
    node = engine.membership.get_node(target) if engine.membership is not None else None
    client = core._client(target)
    if client is None:
        return ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, f"leader {target} has no address here")
    try:
        fut = asyncio.ensure_future(client.forward(req))
    except NotCarried as exc:
        raise ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, str(exc)) from None
    # An attempt in flight gets its answer even past the caller's timeout: the leader answers
    # within 2 x election_timeout_max of losing leadership (the orphan bound), and the
    # transport's own timeout bounds a dead connection.
    bound = core.orphan_bound + core.config.election_timeout_max
    try:
        resp = await _bounded(fut, bound, f"the answer of node {target}")
    except NotCarried as exc:
        raise ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, str(exc)) from None
    except Unreachable as exc:
        # Not delivered: the connection was never made.
        return ForwardToLeader(None, None, ForwardToLeader.NOT_LEADER, f"leader {target} is unreachable: {exc}")
    except (NetworkError, Timeout) as exc:
        raise OutcomeUnknown(OutcomeUnknown.NO_RESPONSE,
                             f"forwarded to node {target} ({node.addr if node is not None else '?'}); "
                             f"no answer: {exc}") from exc
    except RaftError as exc:
        raise OutcomeUnknown(OutcomeUnknown.NO_RESPONSE, f"forwarded to node {target}; it failed: {exc}") from exc
    if resp.result == FORWARD_OK:
        return resp
    reason, detail = _unpack(resp.data)
    if resp.result == FORWARD_UNKNOWN:
        raise OutcomeUnknown(reason, f"at leader {target}: {detail}" if detail else f"at leader {target}")
    named = resp.leader_id if resp.leader_id >= 0 else None
    named_node = engine.membership.get_node(named) if named is not None and engine.membership is not None else None
    return ForwardToLeader(named if named_node is not None else None, named_node, reason,
                           f"node {target}: {detail}" if detail else f"node {target} refused")


def _result(share, batch: bool):
    """A call's share of an accepted forward: (leader id, first index, its responses)."""
    leader_id, first, responses = share
    if not batch and isinstance(responses[0], ApplyError):
        raise responses[0]
    if batch:
        return ForwardedBatchResponses(leader_id, first, responses)
    return ClientWriteResponse(LogId(leader_id, first), responses[0])


class ForwardBatcher:
    """Forwarded writes of one loop iteration to the same leader travel in one ForwardRequest
    (the leader appends them as one batch) and the answer is split among the calls: one
    frame, one msgpack pass and one leader-side write per iteration, not per call. Each call
    gets its share, the refusal, or its own OutcomeUnknown."""

    def __init__(self, core) -> None:
        self.core = core
        self.pending: dict = {}             # target -> [(payloads, future)]
        self.scheduled = False

    def submit(self, target: int, payloads: List[bytes]) -> asyncio.Future:
        """A future of the call's share (leader id, first index, responses) or a ForwardToLeader."""
        fut = self.core.loop.create_future()
        calls = self.pending.get(target)
        if calls is None:
            self.pending[target] = [(payloads, fut)]
        else:
            calls.append((payloads, fut))
        if not self.scheduled:
            self.scheduled = True
            self.core.loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self.scheduled = False
        pending, self.pending = self.pending, {}
        core = self.core
        for target, calls in pending.items():
            if core.stopped is not None:
                for _, fut in calls:
                    if not fut.done():
                        fut.set_exception(core.stopped)
                continue
            payloads = calls[0][0] if len(calls) == 1 else [p for ps, _ in calls for p in ps]
            req = ForwardRequest(True, msgpack.packb(payloads, use_bin_type=True))
            task = core.loop.create_task(_attempt(core, target, req))
            task.add_done_callback(lambda t, calls=calls: _share(t, calls))


def _share(task: asyncio.Task, calls) -> None:
    exc = None if task.cancelled() else task.exception()
    if task.cancelled() or exc is not None:
        for _, fut in calls:
            if not fut.done():
                if task.cancelled():
                    fut.cancel()
                elif isinstance(exc, OutcomeUnknown):
                    err = OutcomeUnknown(exc.reason, exc.detail)    # each caller its own exception
                    err.__cause__ = exc.__cause__
                    fut.set_exception(err)
                else:
                    fut.set_exception(exc)
        return
    outcome = task.result()
    if isinstance(outcome, ForwardToLeader):
        for _, fut in calls:
            if not fut.done():
                fut.set_result(outcome)
        return
    leader, first, responses = _unpack(outcome.data)
    leader_id = LeaderId(0, None) if leader is None else dec_leader(leader)
    at = 0
    for payloads, fut in calls:
        n = len(payloads)
        if not fut.done():
            fut.set_result((leader_id, first + at, responses[at:at + n]))
        at += n


async def _leader_change(core, old: Optional[int], seconds: float) -> None:
    """Wait until a leader other than `old` is known, at most `seconds`."""
    if seconds <= 0:
        return
    def changed(c) -> bool:
        lid = c.engine.leader_id
        return lid is not None and lid != old

    try:
        await asyncio.wait_for(core.wait_core(changed), seconds)
    except asyncio.TimeoutError:
        pass
