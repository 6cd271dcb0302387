"""Backup files of the KV service, and restoring one into a new node's data directory.

A backup is the KV state at one revision, taken by the leader at a linearizable point
(`GET /v1/cluster/snapshot`, `openraft-fast cluster snapshot save FILE`). File layout (all
little-endian):

    MAGIC (8 bytes) | u32 header length | header (msgpack) | state | u32 CRC-32C of all before it

The header holds the format, the revision (the log index the state is at), the term and node of
that entry's leader, the number of keys and the state's length. The state is the KV snapshot
format (KvStateMachine.serialize_async). `openraft-fast restore FILE --data DIR --id N --raft ...
--http ...` turns it into the data directory of a single-voter cluster holding that state: its
snapshot (with the membership {N}), and a WAL whose vote is at the backup's term, so the node
elects itself at once and its log goes on after the backup's revision.
"""
from __future__ import annotations

import os
import struct
from typing import Any, Dict, NamedTuple

import msgpack

from openraft_fast._core import walrec
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import LeaderId, LogId, Membership, Node, Vote
from openraft_fast.errors import InvalidArgument

MAGIC = b"ORFKVBK1"
FORMAT = 1
_LEN = struct.Struct("<I")
_MAX_HEADER = 1 << 20


class BackupError(InvalidArgument):
    """A file that is not a whole, intact backup of ours (nothing was written from it)."""


class Backup(NamedTuple):
    revision: int
    term: int
    leader_node: int
    keys: int
    state: bytes

    @property
    def log_id(self) -> LogId:
        return LogId(LeaderId(self.term, self.leader_node), self.revision)


def pack_backup(applied: LogId, keys: int, state: bytes) -> bytes:
    """The backup file's bytes for `state` (KV snapshot bytes) at log id `applied`."""
    lid = applied.leader_id
    header = msgpack.packb({"format": FORMAT, "revision": applied.index, "term": lid.term,
                            "leader_node": lid.node_id, "keys": keys, "state_bytes": len(state)})
    head = MAGIC + _LEN.pack(len(header)) + header
    crc = walrec.crc32c(state, walrec.crc32c(head))
    return b"".join((head, state, _LEN.pack(crc)))


def read_backup(data: bytes, name: str = "backup") -> Backup:
    """Check and decode backup bytes; BackupError says what is wrong."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + 2 * _LEN.size or bytes(view[:len(MAGIC)]) != MAGIC:
        raise BackupError(f"{name} is not an openraft-fast KV backup (bad magic {bytes(view[:8])!r})")
    (hlen,) = _LEN.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if hlen > _MAX_HEADER or start + hlen + _LEN.size > len(view):
        raise BackupError(f"{name} is truncated or corrupt (header length {hlen}, file {len(view)} bytes)")
    try:
        header: Dict[str, Any] = msgpack.unpackb(view[start:start + hlen])
        revision, term, leader, keys, size = (header["revision"], header["term"], header["leader_node"],
                                              header["keys"], header["state_bytes"])
    except Exception as exc:
        raise BackupError(f"{name}: unreadable header ({exc!r})") from None
    if header.get("format") != FORMAT:
        raise BackupError(f"{name}: unknown backup format {header.get('format')!r}")
    body = start + hlen
    if body + size + _LEN.size != len(view):
        raise BackupError(f"{name} is truncated or corrupt: the header says {size} bytes of state, "
                          f"the file holds {len(view) - body - _LEN.size}")
    (crc,) = _LEN.unpack_from(view, body + size)
    if walrec.crc32c(view[body:body + size], walrec.crc32c(view[:body])) != crc:
        raise BackupError(f"{name} is corrupt: checksum mismatch")
    return Backup(revision, term, leader, keys, bytes(view[body:body + size]))


def write_atomically(path: str, data: bytes) -> None:
    """`path` holds `data` whole or not at all: a temporary file, fsync, rename, fsync of the dir."""
    path = os.path.abspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def restore(backup: Backup, data_dir: str, node_id: int, raft_addr: str, http_addr: str) -> None:
    """Create `data_dir` (which must not exist, or be empty) as node `node_id` of a new
    single-voter cluster holding the backup's state."""
    from openraft_fast.kv.state_machine import KvStateMachine
    from openraft_fast.storage.snapshot_store import SnapshotStore
    from openraft_fast.storage.wal import WalLogStore

    if os.path.exists(data_dir) and (not os.path.isdir(data_dir) or os.listdir(data_dir)):
        raise BackupError(f"{data_dir} exists and is not an empty directory: restore writes only a new one")
    KvStateMachine().restore(backup.state)          # the state itself must load: checked before writing
    member = Membership([{node_id}], {node_id: Node(raft_addr, {"http": http_addr})})
    last = backup.log_id
    meta = SnapshotMeta(last, last, member, f"{last}-0")
    os.makedirs(data_dir, exist_ok=True)
    SnapshotStore(os.path.join(data_dir, "snapshot")).save(meta, backup.state)
    log_store = WalLogStore(os.path.join(data_dir, "log"))
    try:
        # The vote at the backup's term: the node's first election is in a later term, so its
        # entries come after the backup's in term order too.
        await log_store.save_vote(Vote(LeaderId(backup.term, node_id), False))
        await log_store.purge(last)
    finally:
        await log_store.close()
