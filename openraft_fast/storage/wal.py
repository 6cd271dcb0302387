"""WalLogStore: the durable log. Segment files of CRC-checked records, group commit in a
writer thread, vote / committed / last purged id in an atomically replaced metadata file.

Layout of the directory:
  FORMAT                 "openraft_fast-wal 1"; a directory without it is not ours
  LOCK                   flock'ed by the process that has the store open
  meta                   msgpack {vote, committed, purged, last_seg} + crc32c, replaced atomically;
                         last_seg: the first index of the newest segment, recorded once its
                         creation is durable and before any entry in it is acknowledged, so a
                         missing last segment is detected (not mistaken for a shorter log)
  seg-<first index>.wal  records (see openraft_fast._core.walrec), zero-preallocated
"""
from __future__ import annotations

import asyncio
import bisect
import errno
import fcntl
import logging
import os
import threading
import time
from functools import partial
from array import array
from typing import Callable, List, Optional

import msgpack

from openraft_fast._core import walrec
from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.types import LeaderId, LogId, Vote
from openraft_fast.errors import StorageError
from openraft_fast.storage._codec import (dec_leader, dec_log_id, dec_membership, enc_leader, enc_log_id,
                                           enc_membership, fsync_dir, io_error)
from openraft_fast.storage.base import LogState, LogStore

log = logging.getLogger(__name__)

FORMAT = b"openraft_fast-wal 1\n"
TAIL_ENTRIES = 4096
META_INTERVAL = 1.0     # seconds: how often the writer thread saves a changed committed id


class _Segment:
    __slots__ = ("path", "first", "fd", "offsets", "end")

    def __init__(self, path: str, first: int, fd: int, offsets: array, end: int) -> None:
        self.path = path
        self.first = first          # index of its first record
        self.fd = fd
        self.offsets = offsets      # offsets[i]: file offset of record first + i (8 bytes each)
        self.end = end              # where the next record goes

    @property
    def last(self) -> int:
        return self.first + len(self.offsets) - 1


class WalLogStore(LogStore):
    """A durable LogStore in `directory` (created if missing or empty)."""

    def __init__(self, directory, segment_bytes: int = 64 << 20, *, _os=os) -> None:
        self.path = os.fspath(directory)
        self.segment_bytes = int(segment_bytes)
        if self.segment_bytes < 4096:
            raise ValueError("segment_bytes must be at least 4096")
        self._os = _os               # the file layer (tests inject faults through it)
        self._lock_fd: Optional[int] = None
        self._closed = False
        self._failed: Optional[StorageError] = None
        self._segs: List[_Segment] = []
        self._firsts: List[int] = []
        self.vote: Optional[Vote] = None
        self.committed: Optional[LogId] = None
        self.purged: Optional[LogId] = None
        self._last: Optional[LogId] = None
        self._last_seg: Optional[int] = None    # as recorded in the metadata file
        self._meta_lock = threading.RLock()     # the loop's workers and the writer thread write meta
        self._meta_stale = False
        self._error_handler: Optional[tuple] = None     # (loop, callback)
        self._ops = 0           # calls running in a worker thread (close waits for them)
        # group commit
        self._cv = threading.Condition()
        self._pending: list = []        # (loop, on_flushed, on_error or None) waiting for the next sync
        self._dirty: set = set()         # fds written since the last sync
        self._dir_dirty = False
        self._created: Optional[_Segment] = None     # a segment made since the last sync
        self._stop = False
        try:
            self._open()
        except OSError as e:
            self._release()
            raise io_error(f"WAL open of {self.path}", e) from e
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._writer, name=f"wal-sync:{self.path}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ open / recovery
    def _open(self) -> None:
        p = self.path
        if not os.path.exists(p):
            os.makedirs(p)
        if not os.path.isdir(p):
            raise StorageError(f"WAL path {p} is not a directory")
        names = set(os.listdir(p))
        fmt = os.path.join(p, "FORMAT")
        if not names:
            self._lock()
            self._write_meta()
            with open(fmt + ".tmp", "wb") as f:
                f.write(FORMAT)
                f.flush()
                os.fsync(f.fileno())
            os.rename(fmt + ".tmp", fmt)
            fsync_dir(p)
            self._tail = LogBuffer()
            return
        if "FORMAT" not in names:
            raise StorageError(f"{p} is not an openraft_fast WAL directory (no FORMAT file; it holds "
                               f"{sorted(names)[:5]}); refusing to start a new log over it")
        with open(fmt, "rb") as f:
            got = f.read()
        if got != FORMAT:
            raise StorageError(f"{fmt}: unknown WAL format {got[:40]!r} (expected {FORMAT!r})")
        self._lock()
        if "meta" not in names:
            raise StorageError(f"{p}: the metadata file 'meta' is missing")
        self._read_meta()
        for n in names:
            if n.endswith(".tmp"):
                os.unlink(os.path.join(p, n))
        segs = sorted((int(n[4:-4]), n) for n in names if n.startswith("seg-") and n.endswith(".wal"))
        ls = self._last_seg
        if ls is not None and ls > self.first_index - 1 and (not segs or segs[-1][0] < ls):
            raise StorageError(f"{p}: the last segment seg-{ls:020d}.wal is missing (the metadata file records "
                               f"it; the newest segment found is {segs[-1][1] if segs else 'none'})")
        self._recover(segs)

    def _lock(self) -> None:
        fd = os.open(os.path.join(self.path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StorageError(f"WAL directory {self.path} is already open (locked by another store or process)")
        self._lock_fd = fd

    def _read_meta(self) -> None:
        mp = os.path.join(self.path, "meta")
        with open(mp, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or walrec.crc32c(raw[4:]) != int.from_bytes(raw[:4], "little"):
            raise StorageError(f"{mp}: checksum mismatch in the metadata file")
        m = msgpack.unpackb(raw[4:], use_list=True)
        v = m.get("vote")
        self.vote = None if v is None else Vote(dec_leader(v[0]), committed=v[1])
        self.committed = dec_log_id(m.get("committed"))
        self.purged = dec_log_id(m.get("purged"))
        self._last_seg = m.get("last_seg")

    def _meta_bytes(self) -> bytes:
        v = self.vote
        body = msgpack.packb({
            "vote": None if v is None else [enc_leader(v.leader_id), bool(v.committed)],
            "committed": enc_log_id(self.committed),
            "purged": enc_log_id(self.purged),
            "last_seg": self._last_seg,
        }, use_bin_type=True)
        return walrec.crc32c(body).to_bytes(4, "little") + body

    def _write_meta(self) -> None:
        """tmp, fsync, rename, fsync of the directory (runs in a thread when on the loop). The
        bytes are taken under the lock, so the last write holds the newest values."""
        o = self._os
        with self._meta_lock:
            self._meta_stale = False
            data = self._meta_bytes()
            tmp = os.path.join(self.path, "meta.tmp")
            fd = o.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                if o.write(fd, data) != len(data):
                    raise OSError(errno.EIO, "short write of the metadata file")
                o.fsync(fd)
            finally:
                o.close(fd)
            o.rename(tmp, os.path.join(self.path, "meta"))
            fsync_dir(self.path)

    def _recover(self, segs) -> None:
        expect = None if self.purged is None else self.purged.index + 1
        if expect is not None:
            # Leftovers of an interrupted purge: segments whose successor starts at or before
            # the first unpurged index hold only purged entries (some may already be gone).
            while len(segs) > 1 and segs[1][0] <= expect:
                os.unlink(os.path.join(self.path, segs.pop(0)[1]))
        last_leader: Optional[LeaderId] = None
        for k, (first, name) in enumerate(segs):
            path = os.path.join(self.path, name)
            with open(path, "rb") as f:
                data = f.read()
            if expect is not None and first > expect:
                raise StorageError(f"{path}: starts at index {first} but the log needs {expect} "
                                   f"(a segment is missing)")
            if expect is None and first != 1:
                raise StorageError(f"{path}: the first segment starts at {first}, not 1 (a segment is missing)")
            status, end, rfirst, count, offs, _, _, _, lead = walrec.decode(data, 0, first, False)
            cut = False
            if status == walrec.END and k == len(segs) - 1 and data.count(0, end) != len(data) - end:
                # Bytes after the clean end of the last segment: writes that were never synced
                # (a power loss kept a later page, not the one before it). Zero them, or the
                # appends that follow would leave them behind as garbage after their end.
                log.warning("WAL %s: zeroed unsynced bytes after the end at offset %d", path, end)
                cut = True
            elif status != walrec.END:
                is_last = all(not self._has_data(os.path.join(self.path, n)) for _, n in segs[k + 1:])
                torn = (status == walrec.TORN and self._torn_header_ok(data, end)) or (
                    status == walrec.BAD_CRC and self._zeros_after(data, end))
                if not torn or not is_last:
                    kind = {walrec.TORN: "unreadable record", walrec.BAD_CRC: "checksum mismatch",
                            walrec.BAD_INDEX: "index out of sequence"}[status]
                    raise StorageError(f"WAL corrupt: {kind} in {path} at offset {end} "
                                       f"(after {count} good records from index {first})")
                log.warning("WAL %s: cut a torn last record at offset %d (never acknowledged)", path, end)
                cut = True
            if cut:
                fd = os.open(path, os.O_RDWR)
                os.ftruncate(fd, end)
                os.ftruncate(fd, max(self.segment_bytes, end))
                os.fsync(fd)
                os.close(fd)
                for _, n in segs[k + 1:]:
                    os.unlink(os.path.join(self.path, n))
            if count == 0:
                os.unlink(path)
                if cut:
                    break
                continue
            fd = os.open(path, os.O_RDWR)
            a = array("q")
            a.frombytes(offs)
            self._segs.append(_Segment(path, first, fd, a, end))
            self._firsts.append(first)
            expect = first + count
            last_leader = lead
            if cut:
                break       # the segments after it held nothing and are gone
        fsync_dir(self.path)
        # Segments wholly at or below the purged id are leftovers of an interrupted purge.
        self._drop_purged_segments()
        if self._segs and self._segs[-1].last > (self.purged.index if self.purged else 0):
            if last_leader is None:
                raise StorageError(f"WAL corrupt: {self._segs[-1].path} holds entries but no leader id")
            self._last = LogId(last_leader, self._segs[-1].last)
        else:
            self._last = self.purged
            for s in self._segs:
                os.close(s.fd)
                os.unlink(s.path)
            self._segs, self._firsts = [], []
        self._rebuild_tail()

    @staticmethod
    def _zeros_after(data: bytes, at: int) -> bool:
        if len(data) - at < walrec.HEADER_BYTES:
            return True
        blen = int.from_bytes(data[at:at + 4], "little")
        return not any(memoryview(data)[at + walrec.HEADER_BYTES + blen:].tobytes().strip(b"\0"))

    @staticmethod
    def _torn_header_ok(data: bytes, at: int) -> bool:
        """A record cut short (its length runs past the end of the file), or a header whose
        own checksum fails with nothing but zeros after it (a torn write into preallocated
        space); a bad header followed by data is corruption."""
        h = walrec.HEADER_BYTES
        if len(data) - at < h:
            return True
        if walrec.crc32c(data[at:at + 4]) == int.from_bytes(data[at + 4:at + 8], "little"):
            return True
        return not any(memoryview(data)[at + h:].tobytes().strip(b"\0"))

    @staticmethod
    def _has_data(path: str) -> bool:
        with open(path, "rb") as f:
            return f.read(walrec.HEADER_BYTES).strip(b"\0") != b""

    def _rebuild_tail(self) -> None:
        first = self.first_index
        last = self.last_index
        if last < first:
            self._tail = LogBuffer(self.purged if self.purged is not None else None)
            if self._last is not None and self._last != self.purged:
                self._tail.reset(self._last)
            return
        t0 = max(first, last - TAIL_ENTRIES + 1)
        s = self._read_disk(t0, last + 1)
        if t0 == 1:
            self._tail = LogBuffer()
            self._tail.append_slice(s)
        elif t0 == first and self.purged is not None:
            self._tail = LogBuffer(self.purged)
            self._tail.append_slice(s)
        else:
            self._tail = LogBuffer(s.log_id_at(t0))
            if len(s) > 1:
                self._tail.append_slice(LogSlice(t0 + 1, s.payloads[1:], s.kinds[1:], _runs_from(s, t0 + 1)))

    @property
    def first_index(self) -> int:
        return 1 if self.purged is None else self.purged.index + 1

    @property
    def last_index(self) -> int:
        return 0 if self._last is None else self._last.index

    # ------------------------------------------------------------------ writer thread
    def _writer(self) -> None:
        o = self._os
        meta_at = time.monotonic()
        while True:
            with self._cv:
                while not self._pending and not self._dirty and not self._dir_dirty and not self._stop:
                    if self._meta_stale and self._failed is None and time.monotonic() - meta_at >= META_INTERVAL:
                        break
                    self._cv.wait(META_INTERVAL)
                if self._stop and not self._pending and not self._dirty and not self._dir_dirty:
                    return
                pending, self._pending = self._pending, []
                fds = [os.dup(fd) for fd in self._dirty]
                self._dirty = set()
                dir_dirty, self._dir_dirty = self._dir_dirty, False
                created, self._created = self._created, None
            err = self._failed
            if err is None:
                try:
                    for fd in fds:
                        o.fdatasync(fd)
                    if dir_dirty:
                        fsync_dir(self.path)
                    if created is not None:
                        self._record_segment(created)
                except OSError as e:
                    err = self._failed = io_error("WAL fdatasync", e)
                    log.error("%s", err)
            for fd in fds:
                os.close(fd)
            # On a failure nothing is acknowledged, even if a later sync succeeds: a failed
            # fdatasync may have dropped the dirty pages, so the data is not known to be on disk.
            self._call_back(pending, err)
            if err is None and self._meta_stale and time.monotonic() - meta_at >= META_INTERVAL:
                # The committed id, at most about META_INTERVAL behind: a restart after a crash
                # replays that much of the log at once, the rest once a leader commits again.
                # After the callbacks: it delays no acknowledgement.
                try:
                    self._write_meta()
                except OSError as e:
                    self._failed = io_error("WAL metadata write", e)
                    log.error("%s", self._failed)
                    self._call_back([], self._failed)
                meta_at = time.monotonic()

    def _record_segment(self, seg: "_Segment") -> None:
        """Record `seg` (durable now) as the newest segment, unless a truncation dropped it."""
        with self._meta_lock:
            if seg in self._segs and (self._last_seg is None or seg.first > self._last_seg):
                self._last_seg = seg.first
                self._write_meta()

    def _call_back(self, pending, err: Optional[StorageError]) -> None:
        """Run the callbacks of `pending` on their loops (from the writer thread): on_flushed
        after a sync, or on a failure the error callbacks and the store's error handler."""
        by_loop: dict = {}
        for loop, ok, on_err in pending:
            if err is None:
                by_loop.setdefault(loop, []).append(ok)
            elif on_err is not None:
                by_loop.setdefault(loop, []).append(partial(on_err, err))
        if err is not None and self._error_handler is not None:
            loop, handler = self._error_handler
            by_loop.setdefault(loop, []).append(partial(handler, err))
        for loop, cbs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_run_all, cbs)
            except RuntimeError:
                pass        # the loop is closed: nobody waits for these

    def _check(self) -> None:
        if self._closed:
            raise StorageError("WAL store is closed")
        if self._failed is not None:
            raise self._failed

    # ------------------------------------------------------------------ LogStore
    async def get_log_state(self) -> LogState:
        return LogState(self.purged, self._last)

    def set_error_handler(self, callback: Callable[[BaseException], None]) -> None:
        """Call `callback(StorageError)` on this loop when a background sync fails (see LogStore)."""
        self._error_handler = (asyncio.get_running_loop(), callback)

    async def save_vote(self, vote: Vote) -> None:
        self._check()
        old = self.vote
        self.vote = vote
        try:
            await self._in_thread(self._write_meta)
        except OSError as e:
            self.vote = old
            self._failed = io_error("WAL save_vote", e)
            raise self._failed from e

    async def read_vote(self) -> Optional[Vote]:
        return self.vote

    def save_committed(self, log_id: LogId) -> None:
        """Lazy: kept in memory and written with the next metadata write, by the writer thread
        within about META_INTERVAL, or on close."""
        self.committed = log_id
        self._meta_stale = True

    async def read_committed(self) -> Optional[LogId]:
        return self.committed

    def append(self, entries: LogSlice, on_flushed: Callable[[], None]) -> None:
        self._check()
        if len(entries) == 0:
            on_flushed()
            return
        if entries.start != self.last_index + 1 or entries.start < self.first_index:
            raise StorageError(f"append at {entries.start} would leave a hole: the log ends at {self.last_index}")
        seg = self._segs[-1] if self._segs else None
        data, offs = walrec.encode(entries, enc_membership, seg.end if seg else 0)
        o = self._os
        try:
            if seg is None or (seg.end + len(data) > self.segment_bytes and len(seg.offsets)):
                seg = self._new_segment(entries.start)
                data, offs = walrec.encode(entries, enc_membership, 0)
            n = o.pwrite(seg.fd, data, seg.end)
            if n != len(data):
                raise OSError(errno.EIO, f"short write ({n} of {len(data)} bytes)")
        except OSError as e:
            self._failed = io_error(f"WAL write to {seg.path if seg else self.path}", e)
            raise self._failed from e
        seg.offsets.frombytes(offs)
        seg.end += len(data)
        self._last = entries.last_log_id
        self._tail.append_slice(entries)
        if len(self._tail) > 2 * TAIL_ENTRIES:
            self._tail.purge_upto(self._tail.last_index - TAIL_ENTRIES)
        loop = asyncio.get_running_loop()
        with self._cv:
            self._dirty.add(seg.fd)
            self._pending.append((loop, on_flushed, None))
            self._cv.notify()

    def _new_segment(self, first: int) -> _Segment:
        o = self._os
        path = os.path.join(self.path, f"seg-{first:020d}.wal")
        fd = o.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            o.ftruncate(fd, self.segment_bytes)     # zero-filled: a zero header ends the data
        except OSError:
            os.close(fd)
            raise
        seg = _Segment(path, first, fd, array("q"), 0)
        self._segs.append(seg)
        self._firsts.append(first)
        with self._cv:
            self._dir_dirty = True
            self._created = seg
        return seg

    async def truncate_after(self, index: int) -> None:
        self._check()
        if index >= self.last_index:
            return
        if index < self.first_index - 1:
            raise StorageError(f"truncate_after({index}) is below the purged index {self.first_index - 1}")
        new_last = self.purged if index == self.first_index - 1 else (
            self._tail.log_id_at(index) if index >= self._tail.first_index else
            (await self.get_log_entries(index, index + 1)).log_id_at(index))
        drop: List[_Segment] = []
        cut = None
        while self._segs and self._segs[-1].first > index:
            drop.append(self._segs.pop())
            self._firsts.pop()
        self._forget_fds(drop)
        if self._segs:
            seg = self._segs[-1]
            k = index + 1 - seg.first
            if k < len(seg.offsets):
                cut = (seg, seg.offsets[k])
                seg.end = seg.offsets[k]
                del seg.offsets[k:]
        self._last = new_last
        if index >= self._tail.first_index - 1 and len(self._tail):
            self._tail.truncate_after(index)
        else:
            self._rebuild_tail()

        def work():
            o = self._os
            if drop:
                # The newest segment is recorded again before the unlink, so the check for a
                # missing last segment still holds.
                with self._meta_lock:
                    newest = self._segs[-1].first if self._segs else None
                    if self._last_seg is not None and (newest is None or newest < self._last_seg):
                        self._last_seg = newest
                        self._write_meta()
            # Newest first, each unlink durable before the next, then the cut: a crash at any
            # point leaves a prefix of the old log (never a gap before a later segment).
            for s in drop:
                o.unlink(s.path)
                fsync_dir(self.path)
            for s in drop:
                os.close(s.fd)
            if cut is not None:
                seg, off = cut
                o.ftruncate(seg.fd, off)
                o.ftruncate(seg.fd, max(self.segment_bytes, off))
                o.fsync(seg.fd)
        try:
            await self._in_thread(work)
        except OSError as e:
            self._failed = io_error("WAL truncate_after", e)
            raise self._failed from e

    async def purge(self, upto: LogId) -> None:
        self._check()
        if self.purged is not None and upto.index <= self.purged.index:
            return
        past_end = upto.index >= self.last_index
        self.purged = upto
        if past_end:
            self._last = upto
        try:
            await self._in_thread(self._write_meta)
        except OSError as e:
            self._failed = io_error("WAL purge", e)
            raise self._failed from e
        drop = self._drop_purged_segments(unlink=False)
        self._forget_fds(drop)
        if past_end:
            self._tail.reset(upto)
        elif upto.index >= self._tail.first_index:
            self._tail.purge_upto(upto.index)

        def work():
            for s in drop:
                self._os.unlink(s.path)
                os.close(s.fd)
            if drop:
                fsync_dir(self.path)
        try:
            await self._in_thread(work)
        except OSError as e:
            self._failed = io_error("WAL purge", e)
            raise self._failed from e

    def _forget_fds(self, drop: List["_Segment"]) -> None:
        """The writer thread must not take (dup) the fds of dropped segments: they are closed
        in a worker thread next."""
        if drop:
            with self._cv:
                for s in drop:
                    self._dirty.discard(s.fd)

    def _drop_purged_segments(self, unlink: bool = True) -> List[_Segment]:
        """Segments whose every entry is <= the purged index (all of them past the end)."""
        if self.purged is None:
            return []
        p = self.purged.index
        drop = []
        while self._segs and self._segs[0].last <= p:
            drop.append(self._segs.pop(0))
            self._firsts.pop(0)
        if self._segs and p >= self._segs[-1].last:
            drop.extend(self._segs)
            self._segs, self._firsts = [], []
        if unlink:
            for s in drop:
                os.unlink(s.path)
                os.close(s.fd)
        return drop

    async def get_log_entries(self, start: int, stop: int) -> LogSlice:
        self._check()
        stop = min(stop, self.last_index + 1)
        if start < self.first_index:
            raise StorageError(f"get_log_entries({start}, {stop}): entries before {self.first_index} are purged")
        if stop <= start:
            return LogSlice(max(start, 1), [])
        t = self._tail.first_index
        if start >= t:
            return self._tail.slice(start, stop)
        disk = self._read_disk(start, min(stop, t))
        if stop <= t:
            return disk
        mem = self._tail.slice(t, stop)
        return LogSlice(start, disk.payloads + mem.payloads, disk.kinds + mem.kinds,
                        list(disk.runs) + list(mem.runs))

    def _read_disk(self, start: int, stop: int) -> LogSlice:
        payloads: list = []
        kinds = b""
        runs: list = []
        i = start
        while i < stop:
            k = bisect.bisect_right(self._firsts, i) - 1
            seg = self._segs[k]
            a = i - seg.first
            b = min(stop, seg.last + 1) - seg.first
            lo = seg.offsets[a]
            hi = seg.offsets[b] if b < len(seg.offsets) else seg.end
            try:
                data = os.pread(seg.fd, hi - lo, lo)
            except OSError as e:
                raise io_error(f"WAL read of {seg.path}", e) from e
            status, end, _, count, _, ps, ks, rs, _ = walrec.decode(data, 0, i, True, dec_membership)
            if count != b - a:
                raise StorageError(f"WAL corrupt: reading {seg.path} at offset {lo + end}: status {status}")
            payloads += ps or []
            kinds += ks or b""
            runs += rs or []
            i = seg.first + b
        return LogSlice(start, payloads, kinds, runs)

    async def read_log(self) -> LogBuffer:
        self._check()
        buf = LogBuffer(self.purged)
        if self.last_index >= buf.first_index:
            buf.append_slice(await self.get_log_entries(buf.first_index, self.last_index + 1))
        return buf

    # ------------------------------------------------------------------ close
    async def flush(self) -> None:
        """Wait until everything appended so far is durable."""
        self._check()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def flushed() -> None:
            if not fut.done():
                fut.set_result(None)

        def failed(err) -> None:
            if not fut.done():
                fut.set_exception(err)
        with self._cv:
            self._pending.append((loop, flushed, failed))
            self._cv.notify()
        await fut

    async def _in_thread(self, fn) -> None:
        self._ops += 1
        try:
            await asyncio.to_thread(fn)
        finally:
            self._ops -= 1

    async def close(self) -> None:
        """Wait for calls still running (a node just shut down may have a purge under way),
        flush, write the committed id, stop the writer thread and release the directory."""
        if self._closed:
            return
        for _ in range(6000):
            if not self._ops:
                break
            await asyncio.sleep(0.005)
        try:
            if self._failed is None:
                await self.flush()
                if self._meta_stale:
                    await asyncio.to_thread(self._write_meta)
        finally:
            self._closed = True
            with self._cv:
                self._stop = True
                self._cv.notify()
            await asyncio.to_thread(self._thread.join)
            self._release()

    def close_now(self) -> None:
        """Close without a final flush (blocking; for error paths outside the event loop):
        what is not yet durable may be lost, as in a crash."""
        if self._closed:
            return
        self._closed = True
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join()
        self._release()

    def _release(self) -> None:
        for s in self._segs:
            try:
                os.close(s.fd)
            except OSError:
                pass
        self._segs, self._firsts = [], []
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _runs_from(s: LogSlice, start: int):
    runs = []
    for i, (a, lid) in enumerate(s.runs):
        end = s.runs[i + 1][0] if i + 1 < len(s.runs) else s.stop
        if end > start:
            runs.append((max(a, start), lid))
    return runs


def _run_all(cbs) -> None:
    for cb in cbs:
        cb()
