"""SnapshotStore: atomic replacement, checksums, refusal of corrupt or foreign files, and
disk errors; the durable mode of MemStateMachine on top of it."""
import asyncio
import errno
import os

import pytest

from openraft_fast._core.types import Membership, Node
from openraft_fast.errors import StorageError
from openraft_fast.storage import MemStateMachine, SnapshotMeta, SnapshotStore
from openraft_fast.testing.conformance import StateMachineSuite, leader, log_id, make_slice
from openraft_fast._core.types import NORMAL

from openraft_fast.testing.faults import FaultyOs

import msgpack


def _meta(index, sid="s"):
    m = Membership([{1, 2, 3}], {1: Node("a:1"), 2: Node("a:2", {"zone": "x"}), 3: Node("a:3")})
    return SnapshotMeta(log_id(2, 1, index), log_id(1, 1, 1), m, sid)


def test_save_load_round_trip_and_replace(tmp_path):
    st = SnapshotStore(tmp_path / "s")
    assert st.load() is None
    st.save(_meta(10, "a"), b"first")
    big = os.urandom(3 << 20)
    st.save(_meta(20, "b"), memoryview(big))
    snap = SnapshotStore(tmp_path / "s").load()
    assert snap.meta == _meta(20, "b") and snap.data == big
    assert snap.meta.membership.nodes[2].data == {"zone": "x"}
    assert os.listdir(tmp_path / "s") == ["snapshot"]


def test_meta_without_membership_round_trips(tmp_path):
    st = SnapshotStore(tmp_path / "s")
    st.save(SnapshotMeta(None, None, None, ""), b"")
    snap = st.load()
    assert snap.meta == SnapshotMeta(None, None, None, "") and snap.data == b""


def test_every_flipped_byte_or_cut_is_a_storage_error_naming_the_file(tmp_path):
    st = SnapshotStore(tmp_path / "s")
    st.save(_meta(7), b"some state bytes")
    raw = (tmp_path / "s" / "snapshot").read_bytes()
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= 0x10
        (tmp_path / "s" / "snapshot").write_bytes(bytes(bad))
        with pytest.raises(StorageError, match="snapshot") as ei:
            st.load()
        assert str(tmp_path / "s" / "snapshot") in str(ei.value), pos
    for cut in range(len(raw)):
        (tmp_path / "s" / "snapshot").write_bytes(raw[:cut])
        with pytest.raises(StorageError, match=str(tmp_path / "s" / "snapshot")):
            st.load()


def test_foreign_file_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "snapshot").write_bytes(b"PK\x03\x04 a zip, not ours" * 10)
    with pytest.raises(StorageError, match="not an openraft_fast snapshot"):
        SnapshotStore(tmp_path / "s").load()
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(StorageError):
        SnapshotStore(tmp_path / "f")


def test_failed_save_keeps_the_previous_snapshot(tmp_path):
    fo = FaultyOs()
    st = SnapshotStore(tmp_path / "s", _os=fo)
    st.save(_meta(5, "old"), b"old state")
    for call, code in (("write", errno.ENOSPC), ("fsync", errno.EIO), ("rename", errno.EIO)):
        fo.fail = {call: code}
        with pytest.raises(StorageError, match=errno.errorcode[code]):
            st.save(_meta(9, "new"), b"new state" * 1000)
        fo.fail = {}
        snap = SnapshotStore(tmp_path / "s").load()
        assert snap.meta.snapshot_id == "old" and snap.data == b"old state"
        assert not os.path.exists(tmp_path / "s" / "snapshot.tmp")


def test_leftover_tmp_file_is_removed_on_open(tmp_path):
    st = SnapshotStore(tmp_path / "s")
    st.save(_meta(5), b"x")
    (tmp_path / "s" / "snapshot.tmp").write_bytes(b"half a save")
    assert SnapshotStore(tmp_path / "s").load().data == b"x"
    assert not os.path.exists(tmp_path / "s" / "snapshot.tmp")


def _sets(start, n):
    return make_slice(start, [(leader(1, 1), NORMAL, msgpack.packb([f"k{i % 7}", i])) for i in range(start, start + n)])


def test_durable_mem_state_machine_reopens_at_its_last_snapshot(tmp_path):
    async def main():
        sm = MemStateMachine(snapshot_dir=tmp_path / "snap")
        assert await sm.applied_state() == (None, None) and await sm.get_current_snapshot() is None
        await sm.apply(_sets(1, 20))
        built = await sm.build_snapshot()
        await sm.apply(_sets(21, 5))            # after the snapshot: lost on reopen (the log replays it)
        again = MemStateMachine(snapshot_dir=tmp_path / "snap")
        assert (await again.applied_state())[0] == log_id(1, 1, 20)
        want = MemStateMachine()
        await want.apply(_sets(1, 20))
        assert again.data == want.data
        cur = await again.get_current_snapshot()
        assert cur.meta == built.meta and cur.data == built.data
        # Snapshot ids stay unique across restarts.
        assert (await again.build_snapshot()).meta.snapshot_id != built.meta.snapshot_id
        # An installed snapshot is on disk before install_snapshot returns.
        meta = _meta(40, "inst")
        await again.install_snapshot(meta, msgpack.packb([[["x", 1]], []]))
        third = MemStateMachine(snapshot_dir=tmp_path / "snap")
        assert third.data == {"x": 1} and (await third.applied_state())[0] == log_id(2, 1, 40)
        assert (await third.applied_state())[1] == (meta.membership_log_id, meta.membership)
    asyncio.run(asyncio.wait_for(main(), 20))


class TestDurableMemStateMachine(StateMachineSuite):
    def make_state_machine(self):
        return MemStateMachine(snapshot_dir=self.new_path())
