"""SnapshotStore: the current snapshot (meta and data) of a state machine, kept in one file.

A state machine that keeps its state in memory uses it to survive restarts: save every snapshot
it builds or installs, load the snapshot when it opens, and let the runtime replay the log
after it. The methods block on disk I/O: call them from a thread (`asyncio.to_thread`).

Layout of the directory:
  snapshot       the current snapshot, replaced atomically (tmp, fsync, rename, fsync of the dir)
  snapshot.tmp   a save in progress (removed when the store opens)

File: MAGIC (8 bytes), u32 meta length, u64 data length, meta (msgpack), data, then
u32 crc32c of everything before it (all little-endian). The data is read and written in
place: one copy in memory, never two.
"""
from __future__ import annotations

import os
import struct
from typing import Optional

import msgpack

from openraft_fast._core import walrec
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast.errors import StorageError
from openraft_fast.storage._codec import dec_log_id, dec_membership, enc_log_id, enc_membership, fsync_dir, io_error, \
    write_all
from openraft_fast.storage.base import Snapshot

MAGIC = b"ORFSNAP1"
_HEAD = struct.Struct("<8sIQ")
_CRC = struct.Struct("<I")
# A meta block larger than this is not one we wrote (a membership of a few thousand nodes fits).
_MAX_META = 64 << 20
FILE_NAME = "snapshot"


def _meta_bytes(meta: SnapshotMeta) -> bytes:
    return msgpack.packb([enc_log_id(meta.last_log_id), enc_log_id(meta.membership_log_id),
                          None if meta.membership is None else enc_membership(meta.membership),
                          meta.snapshot_id], use_bin_type=True)


def _meta_from(b: bytes) -> SnapshotMeta:
    last, mid, m, sid = msgpack.unpackb(b, use_list=True)
    return SnapshotMeta(dec_log_id(last), dec_log_id(mid), None if m is None else dec_membership(m), sid)


class SnapshotStore:
    """The current snapshot in `directory` (created if missing)."""

    def __init__(self, directory, *, _os=os) -> None:
        self.path = os.fspath(directory)
        self.file = os.path.join(self.path, FILE_NAME)
        self._os = _os              # the file layer (tests inject faults through it)
        try:
            os.makedirs(self.path, exist_ok=True)
            tmp = self.file + ".tmp"
            if os.path.exists(tmp):
                os.unlink(tmp)      # a save that never finished; the previous snapshot stands
        except OSError as e:
            raise io_error(f"snapshot store: opening {self.path}", e) from e
        if not os.path.isdir(self.path):
            raise StorageError(f"snapshot store path {self.path} is not a directory")

    def save(self, meta: SnapshotMeta, data) -> None:
        """Make (meta, data) the current snapshot, durably, replacing the previous one
        atomically: after a crash the file holds either the old snapshot or the new one."""
        if not isinstance(meta, SnapshotMeta):
            raise TypeError(f"meta must be a SnapshotMeta, got {type(meta).__name__}")
        view = memoryview(data).cast("B")
        mb = _meta_bytes(meta)
        head = _HEAD.pack(MAGIC, len(mb), len(view)) + mb
        crc = walrec.crc32c(view, walrec.crc32c(head))
        o = self._os
        tmp = self.file + ".tmp"
        try:
            fd = o.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                write_all(o, fd, head)
                write_all(o, fd, view)
                write_all(o, fd, _CRC.pack(crc))
                o.fsync(fd)
            finally:
                o.close(fd)
            o.rename(tmp, self.file)
            fsync_dir(self.path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise io_error(f"saving the snapshot {self.file}", e) from e

    def load(self) -> Optional[Snapshot]:
        """The current snapshot, checksum verified, or None when there is none. A file that is
        not a whole snapshot of ours raises StorageError naming it."""
        try:
            f = open(self.file, "rb")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise io_error(f"reading the snapshot {self.file}", e) from e
        try:
            with f:
                size = os.fstat(f.fileno()).st_size
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size or head[:8] != MAGIC:
                    raise StorageError(f"{self.file}: not an openraft_fast snapshot (bad magic {head[:8]!r})")
                _, mlen, dlen = _HEAD.unpack(head)
                if mlen > _MAX_META or _HEAD.size + mlen + dlen + _CRC.size != size:
                    raise StorageError(f"{self.file}: corrupt snapshot: lengths (meta {mlen}, data {dlen}) "
                                       f"do not match the file size {size}")
                mb = f.read(mlen)
                data = f.read(dlen)
                tail = f.read(_CRC.size)
        except OSError as e:
            raise io_error(f"reading the snapshot {self.file}", e) from e
        if len(mb) != mlen or len(data) != dlen or len(tail) != _CRC.size:
            raise StorageError(f"{self.file}: corrupt snapshot: the file is shorter than its header says")
        if walrec.crc32c(data, walrec.crc32c(head + mb)) != _CRC.unpack(tail)[0]:
            raise StorageError(f"{self.file}: corrupt snapshot: checksum mismatch")
        try:
            meta = _meta_from(mb)
        except Exception as e:
            raise StorageError(f"{self.file}: corrupt snapshot: unreadable meta ({e!r})") from e
        return Snapshot(meta, data)
