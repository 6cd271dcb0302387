"""open_storage: the layout, options passed through, errors at open, and a node restarted on
it: its state is the snapshot plus the committed log after it, also when it crashed between
installing a snapshot and purging its log."""
import asyncio
import os

import msgpack
import pytest

import openraft_fast as orf
from openraft_fast._core.types import MEMBERSHIP, NORMAL, Membership, Node, Vote
from openraft_fast.errors import StorageError
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemStateMachine, SnapshotMeta, WalLogStore, open_storage
from openraft_fast.testing.conformance import leader, log_id, make_slice

CFG = orf.Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_layout_and_options(tmp_path):
    async def main():
        log_store, sm = open_storage(tmp_path / "n", segment_bytes=8192)
        assert isinstance(log_store, WalLogStore) and isinstance(sm, MemStateMachine)
        assert log_store.segment_bytes == 8192 and log_store.path == str(tmp_path / "n" / "log")
        assert sm.snapshot_store.path == str(tmp_path / "n" / "snapshot")
        assert sorted(os.listdir(tmp_path / "n")) == ["log", "snapshot"]
        with pytest.raises(StorageError, match="already open"):
            open_storage(tmp_path / "n")
        await log_store.close()
        with pytest.raises(TypeError):
            open_storage(tmp_path / "n", no_such_option=1)
        with pytest.raises(ValueError):
            open_storage(tmp_path / "m", segment_bytes=10)
    run(main())


def test_corrupt_snapshot_fails_the_open_and_releases_the_log(tmp_path):
    async def main():
        log_store, sm = open_storage(tmp_path / "n")
        await log_store.close()
        (tmp_path / "n" / "snapshot" / "snapshot").write_bytes(b"garbage, not a snapshot")
        with pytest.raises(StorageError, match="snapshot"):
            open_storage(tmp_path / "n")
        os.unlink(tmp_path / "n" / "snapshot" / "snapshot")
        log_store, sm = open_storage(tmp_path / "n")        # the WAL was released
        await log_store.close()
    run(main())


async def _append(store, s):
    fut = asyncio.get_running_loop().create_future()
    store.append(s, lambda: fut.done() or fut.set_result(None))
    await fut


def test_snapshot_ahead_of_the_log_after_a_crash_between_install_and_purge(tmp_path):
    async def main():
        m = Membership({1}, {1: Node("local:1")})
        log_store, sm = open_storage(tmp_path / "n")
        # The log: membership, then 9 sets of the first leader; the snapshot (installed from
        # another leader, the crash came before the purge) covers up to 50.
        items = [(leader(1, 1), MEMBERSHIP, m)] + [(leader(1, 1), NORMAL, msgpack.packb(["old", i])) for i in range(9)]
        await _append(log_store, make_slice(1, items))
        meta = SnapshotMeta(log_id(2, 2, 50), log_id(1, 1, 1), m, "s")
        await log_store.save_vote(Vote.new(2, 2, committed=True))      # the leader that sent it
        await sm.install_snapshot(meta, msgpack.packb([[["a", 1], ["b", 2]], []]))
        log_store.close_now()

        for round_ in range(2):
            log_store, sm = open_storage(tmp_path / "n")
            router = LocalRouter()
            raft = await orf.Raft.start(1, CFG, router.factory(1), log_store, sm)
            router.add(raft)
            try:
                await raft.wait(5).state(orf.ServerState.LEADER)
                assert raft.metrics.purged is not None and raft.metrics.purged.index >= 50
                assert "old" not in sm.data and sm.data["a"] == 1 and sm.data["b"] == 2
                if round_ == 0:
                    r = await raft.client_write(msgpack.packb(["c", 3]))
                    assert r.log_id.index > 50
                else:       # replayed from the log after the snapshot
                    assert sm.data["c"] == 3
            finally:
                await raft.shutdown()
                await log_store.close()
    run(main())
