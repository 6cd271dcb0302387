"""Outgoing RPCs (runtime concern): one network client per target, made on first use; a
response comes back as an engine event. No task per message: the shipped networks hand back
futures, and the callback on each posts the response."""
import asyncio
import logging
from functools import partial

from openraft_fast._core.events cimport EventQueue
from openraft_fast._core.messages cimport AppendRequest, TimeoutNow, VoteRequest

log = logging.getLogger("openraft_fast")
_Future = asyncio.Future


cdef inline _watch(aw, callback):
    fut = aw if isinstance(aw, _Future) else asyncio.ensure_future(aw)
    fut.add_done_callback(callback)


cdef class Peers:
    def __init__(self, EventQueue q, factory, engine):
        self.q = q
        self.factory = factory
        self.engine = engine
        self.clients = {}
        self.nodes = {}
        self.membership = None
        self.on_append_response = engine.recv_append_response
        self.on_vote_response = engine.recv_vote_response
        self.on_timeout_now_failed = None

    cpdef object client(self, object target):
        """The client for `target`, or None when the membership has no address for it."""
        if self.engine.membership is not self.membership:
            self._check_addresses()
        client = self.clients.get(target)
        if client is None:
            node = self.engine.target_node(target)
            if node is None:
                return None
            client = self.clients[target] = self.factory.new_client(target, node)
            self.nodes[target] = node
        return client

    cdef int _check_addresses(self) except -1:
        """The membership changed: a node id it now maps to another address (a node removed
        and added again elsewhere, or replaced) gets a new client; the old one is closed."""
        self.membership = self.engine.membership
        for target in list(self.clients):
            node = self.engine.target_node(target)
            old = self.nodes.get(target)
            if node is not None and old is not None and node.addr != old.addr:
                log.info("node %s: node %s moved from %s to %s", self.engine.node_id, target, old.addr, node.addr)
                client = self.clients.pop(target)
                del self.nodes[target]
                try:
                    client.close()
                except Exception:
                    log.exception("closing a network client")
        return 0

    cdef int send(self, object target, object msg) except -1:
        client = self.client(target)
        if client is None:
            return 0
        t = type(msg)
        if t is AppendRequest:
            _watch(client.append_entries(msg), partial(self._append_done, target))
        elif t is VoteRequest:
            log.debug("node %s: vote request to %s: %r", self.engine.node_id, target, msg)
            _watch(client.vote(msg), partial(self._vote_done, target))
        elif t is TimeoutNow:
            log.debug("node %s: TimeoutNow to %s", self.engine.node_id, target)
            _watch(client.timeout_now(msg), partial(self._timeout_now_done, target))
        return 0

    cdef int heartbeat(self, object target, object msg) except -1:
        client = self.client(target)
        if client is not None:
            _watch(client.heartbeat(msg), partial(self._append_done, target))
        return 0

    def _append_done(self, target, fut):
        if fut.cancelled() or fut.exception() is not None or self.q.stopped is not None:
            return      # lost messages are resent by the engine's retransmit timer
        self.q.push(self.on_append_response, (target, fut.result()))

    def _vote_done(self, target, fut):
        if fut.cancelled() or fut.exception() is not None or self.q.stopped is not None:
            return
        log.debug("node %s: vote response from %s: %r", self.engine.node_id, target, fut.result())
        self.q.push(self.on_vote_response, (target, fut.result()))

    def _timeout_now_done(self, target, fut):
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None and self.on_timeout_now_failed is not None and self.q.stopped is None:
            self.on_timeout_now_failed(target, exc)

    def close_all(self):
        for c in self.clients.values():
            try:
                c.close()
            except Exception:
                log.exception("closing a network client")
        self.clients.clear()
        self.nodes.clear()
