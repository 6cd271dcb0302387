"""Value codecs and file helpers shared by the durable stores (the WAL and the snapshot store)."""
from __future__ import annotations

import errno
import os
from typing import Optional

import msgpack

from openraft_fast._core.types import LeaderId, LogId, Membership, Node
from openraft_fast.errors import StorageError


def enc_membership(m: Membership) -> bytes:
    return msgpack.packb([[sorted(c) for c in m.configs],
                          [[k, n.addr, n.data] for k, n in sorted(m.nodes.items())]], use_bin_type=True)


def dec_membership(b: bytes) -> Membership:
    cfgs, nodes = msgpack.unpackb(b, use_list=True, strict_map_key=False)
    return Membership([set(c) for c in cfgs], {k: Node(addr, data) for k, addr, data in nodes})


def enc_leader(lid: LeaderId):
    return [lid.term, lid.node_id, bool(lid.std)]


def dec_leader(v) -> LeaderId:
    return LeaderId(v[0], v[1], std=v[2])


def enc_log_id(x: Optional[LogId]):
    return None if x is None else [enc_leader(x.leader_id), x.index]


def dec_log_id(v) -> Optional[LogId]:
    return None if v is None else LogId(dec_leader(v[0]), v[1])


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def io_error(what: str, exc: OSError) -> StorageError:
    """A StorageError naming the failed operation and the errno (ENOSPC, EIO, ...)."""
    name = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else "?"
    return StorageError(f"{what} failed: {name}: {exc}")


def write_all(o, fd: int, data) -> None:
    """Write every byte of `data` at the file position (looping over short writes)."""
    view = memoryview(data).cast("B")
    while len(view):
        n = o.write(fd, view[:1 << 24])
        if n <= 0:
            raise OSError(errno.EIO, "write wrote nothing")
        view = view[n:]
