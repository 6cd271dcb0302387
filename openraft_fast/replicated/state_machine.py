"""The state machine of a replicated object: each NORMAL entry is a command call
(msgpack [name, args, kwargs]) run on the object; its response is the msgpack of the result,
or an ApplyError when the method raised or the call is not one of the object's commands."""
from __future__ import annotations

import logging

from openraft_fast.errors import ApplyError
from openraft_fast.replicated.object import _APPLYING, ReplicatedObject, pack_result, unpack_call
from openraft_fast.storage.snapshotting import SnapshottingStateMachine

log = logging.getLogger("openraft_fast.replicated")


class ReplicatedStateMachine(SnapshottingStateMachine):
    """Applies command calls to `obj`; snapshots are `obj.snapshot()`, kept in `snapshot_dir`."""

    def __init__(self, obj: ReplicatedObject, snapshot_dir=None) -> None:
        self.obj = obj
        self.commands = type(obj)._commands
        super().__init__(snapshot_dir)          # restores the object from the snapshot found there

    def apply_command(self, index: int, payload: bytes):
        obj = self.obj
        try:
            name, args, kwargs = unpack_call(payload)
        except Exception as exc:
            return ApplyError(f"entry {index} is not a command call: {exc!r}", "BadCommand")
        method = self.commands.get(name)
        if method is None:
            return ApplyError(f"{type(obj).__name__} has no command {name!r}", "UnknownCommand")
        d = obj.__dict__
        d[_APPLYING] = True         # the methods are plain code while a command runs
        try:
            result = method.fn(obj, *args, **kwargs)
        except Exception as exc:
            # Deterministic (the same call on the same state raises the same way everywhere):
            # this call's error, not the node's.
            return ApplyError(str(exc), type(exc).__name__)
        finally:
            d[_APPLYING] = False
        try:
            return pack_result(result)
        except (TypeError, ValueError, OverflowError) as exc:
            return ApplyError(f"command {name!r} returned a {type(result).__name__} that msgpack cannot pack "
                              f"({exc}); its changes were applied", "UnpackableResult")

    def serialize(self) -> bytes:
        return self.obj.snapshot()

    def restore(self, data: bytes) -> None:
        if data:
            self.obj.restore(data)
