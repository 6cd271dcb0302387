"""A snapshot on disk: one file, replaced atomically (write a temporary file, fsync, rename,
fsync the directory), so a crash leaves the old snapshot or the new one, never a mix.

File: magic, CRC-32 of the body, body = msgpack [meta, data]. A file that does not check out
raises StorageError naming the path: a node never starts from a snapshot it cannot trust.
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import Optional

import msgpack

from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import LeaderId, LogId, Membership, Node
from openraft_fast.errors import StorageError
from openraft_fast.storage.base import Snapshot

MAGIC = b"ORFKVSN1"
_HEADER = struct.Struct(">8sI")
FILE_NAME = "snapshot.bin"


def _log_id(log_id: Optional[LogId]):
    if log_id is None:
        return None
    lid = log_id.leader_id
    return [lid.term, lid.node_id, lid.std, log_id.index]


def _from_log_id(v) -> Optional[LogId]:
    if v is None:
        return None
    term, node_id, std, index = v
    return LogId(LeaderId(term, node_id, std=std), index)


def _membership(m: Optional[Membership]):
    if m is None:
        return None
    return [[sorted(c) for c in m.configs], [[i, n.addr, n.data] for i, n in sorted(m.nodes.items())]]


def _from_membership(v) -> Optional[Membership]:
    if v is None:
        return None
    configs, nodes = v
    return Membership([set(c) for c in configs], {i: Node(addr, data) for i, addr, data in nodes})


def encode(snapshot: Snapshot) -> bytes:
    meta = snapshot.meta
    body = msgpack.packb([[_log_id(meta.last_log_id), _log_id(meta.membership_log_id),
                           _membership(meta.membership), meta.snapshot_id], snapshot.data], use_bin_type=True)
    return _HEADER.pack(MAGIC, zlib.crc32(body)) + body


def decode(raw: bytes, where: str = "snapshot") -> Snapshot:
    if len(raw) < _HEADER.size:
        raise StorageError(f"{where}: truncated snapshot file ({len(raw)} bytes)")
    magic, crc = _HEADER.unpack_from(raw)
    body = memoryview(raw)[_HEADER.size:]
    if magic != MAGIC:
        raise StorageError(f"{where}: not a KV snapshot file (magic {magic!r})")
    if zlib.crc32(body) != crc:
        raise StorageError(f"{where}: snapshot checksum mismatch (corrupt file)")
    try:
        (last, mid, m, sid), data = msgpack.unpackb(body, raw=False)
        meta = SnapshotMeta(_from_log_id(last), _from_log_id(mid), _from_membership(m), sid)
    except Exception as exc:
        raise StorageError(f"{where}: malformed snapshot: {exc!r}") from exc
    return Snapshot(meta, data)


class SnapshotFile:
    """The latest snapshot of one state machine, in `directory`."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create snapshot directory {directory!r}: {exc}") from exc

    def load(self) -> Optional[Snapshot]:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path!r}: {exc}") from exc
        return decode(raw, self.path)

    def save(self, snapshot: Snapshot) -> None:
        """Blocking: call it off the event loop (asyncio.to_thread)."""
        raw = encode(snapshot)
        tmp = self.path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise StorageError(f"cannot write snapshot {self.path!r}: {exc}") from exc
