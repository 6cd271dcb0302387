"""RPCs received (runtime concern): each request becomes an engine event, and the caller's
future waits, keyed by (kind, peer, seq), for the response the engine emits (a Respond
command). Duplicates wait in order behind the same key."""
from collections import deque

from openraft_fast._core.events cimport EventQueue
from openraft_fast._core.messages cimport AppendResponse, SnapshotResponse, VoteResponse
from openraft_fast.errors import RaftError, Stopped


cdef class RpcInbox:
    def __init__(self, EventQueue q, engine, serve_read_index, serve_forward=None):
        self.q = q
        self.recv_append = engine.recv_append
        self.recv_vote = engine.recv_vote
        self.recv_snapshot = engine.recv_snapshot
        self.recv_timeout_now = engine.recv_timeout_now
        self.serve_read_index = serve_read_index
        self.serve_forward = serve_forward
        self.waiters = {}

    def receive(self, kind, src, msg, fut):
        """An RPC from `src`; `fut` gets the response (entry point of the networks)."""
        if self.q.stopped is not None:
            if not fut.done():
                fut.set_exception(Stopped())
            return
        if kind == "append" or kind == "heartbeat":
            self._wait(("a", src, msg.seq), fut)
            self.q.push(self.recv_append, (src, msg))
        elif kind == "vote":
            self._wait(("v", src), fut)
            self.q.push(self.recv_vote, (src, msg))
        elif kind == "snapshot":
            self._wait(("s", src, msg.seq), fut)
            self.q.push(self.recv_snapshot, (src, msg))
        elif kind == "timeout_now":
            fut.set_result(None)
            self.q.push(self.recv_timeout_now, (src, msg))
        elif kind == "read_index":
            self.serve_read_index(msg, fut)
        elif kind == "forward":
            self.serve_forward(msg, fut)
        else:
            fut.set_exception(RaftError(f"unknown rpc kind {kind!r}"))

    cdef int _wait(self, object key, object fut) except -1:
        q = self.waiters.get(key)
        if q is None:
            self.waiters[key] = deque((fut,))
        else:
            q.append(fut)
        return 0

    cdef int respond(self, object target, object msg) except -1:
        t = type(msg)
        if t is AppendResponse:
            key = ("a", target, (<AppendResponse>msg).seq)
        elif t is VoteResponse:
            key = ("v", target)
        else:
            key = ("s", target, (<SnapshotResponse>msg).seq)
        q = self.waiters.get(key)
        if not q:
            return 0
        fut = q.popleft()
        if not q:
            del self.waiters[key]
        if not fut.done():
            fut.set_result(msg)
        return 0

    def fail_all(self, BaseException err):
        for q in self.waiters.values():
            for fut in q:
                if not fut.done():
                    fut.set_exception(err)
        self.waiters.clear()
