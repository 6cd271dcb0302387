"""Replicated objects: PySyncObj's ergonomics on openraft_fast.

    class Counter(ReplicatedObject):
        def __init__(self):
            self.value = 0

        @command
        def incr(self, n=1):
            self.value += n
            return self.value

        @query
        def get(self):
            return self.value

    node = await ReplicatedNode.start(counter, 1, {1: "127.0.0.1:7001", 2: ..., 3: ...}, "data/1")
    await counter.incr(5)       # from any node: replicated through the leader
    await counter.get()         # linearizable

`object` holds the base class and the decorators, `state_machine` runs the commands, `node`
wires a node (WAL, TCP, runtime). Errors are the library's own: ApplyError for a method that
raised, ForwardToLeader (refused, nothing applied) and OutcomeUnknown (maybe applied).
"""
from openraft_fast.replicated.node import ReplicatedNode
from openraft_fast.replicated.object import ReplicatedObject, command, query
from openraft_fast.replicated.state_machine import ReplicatedStateMachine

__all__ = ["ReplicatedNode", "ReplicatedObject", "ReplicatedStateMachine", "command", "query"]
