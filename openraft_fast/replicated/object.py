"""ReplicatedObject and its method decorators: `@command` changes state on every replica in log
order, `@query` reads it after a linearizable barrier.

A subclass is plain Python until a ReplicatedNode starts with it: then `await obj.method(...)`
replicates a command (or runs a query) and returns its result, from any node. While the node
applies a command, the methods run as plain code on every replica. Arguments and results go
through msgpack: bytes, str, int, float, bool, None, lists (tuples arrive as lists) and dicts.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Optional

import msgpack

from openraft_fast.errors import InvalidArgument, InvalidArgumentType

# Instance attributes of the binding; never part of the replicated state.
_BINDING = "_orf_node"
_APPLYING = "_orf_applying"


class _Method:
    """A decorated method: a descriptor that is the plain function while the object is not
    served (or while a command is being applied), and a replicating coroutine function while
    a started node serves the object."""

    kind = ""

    def __init__(self, fn: Callable) -> None:
        if not callable(fn) or inspect.iscoroutinefunction(fn):
            raise InvalidArgumentType(f"@{self.kind} takes a plain (not async) method, got {fn!r}: it runs "
                                      "inside the state machine, which must not wait")
        self.fn = fn
        self.name = fn.__name__
        functools.update_wrapper(self, fn)      # type: ignore[arg-type]

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        node = obj.__dict__.get(_BINDING)
        if node is None or obj.__dict__.get(_APPLYING):
            return self.fn.__get__(obj, owner)
        return functools.partial(self._call, node, obj)

    async def _call(self, node, obj, *args, **kwargs):
        raise NotImplementedError


class _Command(_Method):
    kind = "command"

    async def _call(self, node, obj, *args, **kwargs):
        return await node.call_command(self.name, args, kwargs)


class _Query(_Method):
    kind = "query"

    def __init__(self, fn: Callable, lease: bool = False, local: bool = False) -> None:
        super().__init__(fn)
        if lease and local:
            raise InvalidArgument("@query: lease=True and local=True exclude each other")
        self.lease = lease
        self.local = local

    async def _call(self, node, obj, *args, **kwargs):
        return await node.call_query(self, obj, args, kwargs)


def command(fn: Callable) -> _Command:
    """Mark a method as a command: it changes the object's state. `await obj.method(...)` on a
    started node appends the call to the Raft log (forwarded to the leader from a follower);
    every replica runs it in log order, and the caller gets the leader's result.

    The method must be deterministic (same state and arguments, same result and changes on
    every replica: no clock, randomness or I/O). An exception it raises becomes the caller's
    `openraft_fast.ApplyError` (kind = the exception's class name); every replica records the
    same outcome and the node goes on. Changes it made before raising stay (on every replica).
    """
    return _Command(fn)


def query(fn: Optional[Callable] = None, *, lease: bool = False, local: bool = False):
    """Mark a method as a query: it reads the object's state. `await obj.method(...)` on a
    started node first makes the read linearizable: a read-index round by default
    (ReadPolicy.READ_INDEX), the leader lease with `lease=True` (no round while the lease
    holds), or nothing with `local=True` (this replica's state as it is: fast, possibly stale).
    The result is a msgpack copy, so a caller can never change the replica's state through it.
    Use as `@query` or `@query(lease=True)`."""
    if fn is None:
        return lambda f: _Query(f, lease=lease, local=local)
    return _Query(fn, lease=lease, local=local)


class ReplicatedObject:
    """Base class of a replicated object: subclass it, decorate methods with `@command` and
    `@query`, and serve it with `ReplicatedNode.start(obj, ...)`.

    Its state is what `__getstate__` returns (by default the instance's `__dict__`, less the
    binding), packed with msgpack into snapshots and restored with `__setstate__`. Override
    `snapshot() -> bytes` and `restore(data: bytes)` for state msgpack cannot hold (sets,
    custom classes) or to pack it faster; they are called on the event loop, between commands.
    """

    _commands: Dict[str, _Command] = {}
    _queries: Dict[str, _Query] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        commands: Dict[str, _Command] = {}
        queries: Dict[str, _Query] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                commands.pop(name, None)
                queries.pop(name, None)
                if isinstance(attr, _Command):
                    commands[name] = attr
                elif isinstance(attr, _Query):
                    queries[name] = attr
        cls._commands = commands
        cls._queries = queries

    @classmethod
    def command_names(cls):
        """The registry: the names of the commands, sorted. Every node of a cluster must serve
        a class with the same registry (ReplicatedNode checks it against the one saved in its
        data directory when it starts)."""
        return sorted(cls._commands)

    # ---------------------------------------------------------------- state
    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_orf_")}

    def __setstate__(self, state) -> None:
        binding = {k: v for k, v in self.__dict__.items() if k.startswith("_orf_")}
        self.__dict__.clear()
        self.__dict__.update(state)
        self.__dict__.update(binding)

    def snapshot(self) -> bytes:
        """The object's state as bytes (default: msgpack of `__getstate__()`)."""
        state = self.__getstate__()
        try:
            return msgpack.packb(state, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"{type(self).__name__}: its state cannot be packed with msgpack ({exc}); "
                            f"override snapshot() and restore(), or __getstate__/__setstate__") from exc

    def restore(self, data: bytes) -> None:
        """Replace the object's state with `data` from snapshot() (default: msgpack into
        `__setstate__`)."""
        self.__setstate__(msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False))


def pack_call(name: str, args, kwargs) -> bytes:
    """A command call as a log payload: msgpack [name, args, kwargs or nil]."""
    try:
        return msgpack.packb([name, list(args), kwargs or None], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentType(f"arguments of command {name!r} cannot be packed with msgpack: {exc}") from None


def unpack_call(payload: bytes):
    name, args, kwargs = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=False)
    return name, args, kwargs or {}


def pack_result(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack_result(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
