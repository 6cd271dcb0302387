"""A 3-node cluster on durable storage (open_storage: WalLogStore + MemStateMachine with its
snapshots on disk), restarted from disk: every acknowledged write survives a restart of every
node, a node restarted alone catches up, and a failed fdatasync stops a node at once."""
import asyncio
import errno

import pytest
from cluster_support import WAIT, Cluster, kv, node, retry_write

from openraft_fast import Config, ServerState
from openraft_fast.errors import OutcomeUnknown, RaftError, StorageError
from openraft_fast.storage import open_storage
from openraft_fast.testing.faults import FaultyOs

# Snapshots every 40 entries, few logs kept: restarts go through snapshot + log replay, and a
# node that was down catches up by a snapshot install.
CFG = Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3,
             snapshot_policy=40, max_in_snapshot_log_to_keep=5)
SEG = 16 << 10      # small segments: rotation and purge of whole segments happen


class WalCluster(Cluster):
    """Cluster whose nodes keep their storage in tmp_path/n<i>."""

    def __init__(self, root, config=CFG, **wal_options):
        super().__init__(config)
        self.root = root
        self.wal_options = wal_options

    async def open_node(self, i: int, **wal_options):
        log_store, sm = open_storage(self.root / f"n{i}", segment_bytes=SEG, **(wal_options or self.wal_options))
        self.router.heal(i)
        return await self.start_node(i, log_store, sm)

    async def start_all(self, wal_options=None) -> int:
        """Nodes 1-3 on their storage (wal_options[i] for node i), initialized; the leader's id."""
        for i in (1, 2, 3):
            await self.open_node(i, **((wal_options or {}).get(i, {})))
        await self.rafts[1].initialize({i: node(i) for i in (1, 2, 3)})
        return await self.wait_leader()

    async def close_node(self, i: int) -> None:
        """Shut node i down and close its stores (what a process exit does)."""
        if i not in self.stopped:
            await self.stop(i)
        await self.stores[i][0].close()

    async def close_all(self) -> None:
        for i in list(self.rafts):
            await self.close_node(i)

    async def crash_all(self) -> None:
        """Stop every node without closing its log: no final flush or metadata write, as a
        kill -9 leaves it (what the page cache holds stays)."""
        for i in list(self.rafts):
            if i not in self.stopped:
                await self.stop(i)
            self.stores[i][0].close_now()


async def _write_acked(c: WalCluster, expect: dict, start: int, n: int, batch: bool = False) -> None:
    """Write keys k<start>..k<start+n-1>; record only acknowledged writes in `expect`."""
    if batch:
        lead = await c.wait_leader(c.live())
        await c.rafts[lead].client_write_many([kv(f"k{j}", j) for j in range(start, start + n)])
        expect.update({f"k{j}": j for j in range(start, start + n)})
        return
    for j in range(start, start + n):
        await retry_write(c, f"k{j}", j, ids=c.live())
        expect[f"k{j}"] = j


async def _all_have(c: WalCluster, expect: dict, ids=None, maybe: dict = None) -> None:
    """Every live node (or `ids`) applies everything the leader applied and holds exactly
    `expect`, plus any of the writes in `maybe` (outcome unknown: they may have committed)."""
    ids = c.live(ids)
    lead = await c.wait_leader(ids)
    last = (await retry_write(c, "sync", len(expect), ids=ids)).log_id.index     # commits in this term
    await c.wait_applied(last, ids)
    for i in ids:
        data = {k: v for k, v in c.sm(i).data.items() if k != "sync"}
        extra = {k: v for k, v in data.items() if k not in expect}
        assert {k: data.get(k) for k in expect} == expect, f"node {i} (leader {lead}) lost acknowledged writes"
        assert all((maybe or {}).get(k, object()) == v for k, v in extra.items()), \
            f"node {i} holds writes never made: {extra}"


@pytest.mark.parametrize("how", ["close", "crash"])
def test_full_restart_recovers_every_acknowledged_write(run, tmp_path, how):
    async def main():
        c = WalCluster(tmp_path)
        expect: dict = {}
        try:
            await c.start_all()
            await _write_acked(c, expect, 0, 60)
            await _write_acked(c, expect, 60, 100, batch=True)
            leader = await c.wait_leader()
            if how == "crash":
                await c.crash_all()
            else:
                await c.close_all()

            # The old leader alone: its state is its snapshot plus its committed log replayed
            # (after a crash, the committed id it last saved: the rest commits again below).
            r = await c.open_node(leader)
            m = r.metrics
            assert m.snapshot is not None and m.purged is not None, "no snapshot / purge: the test misses its point"
            await r.wait(WAIT).applied_index(m.committed.index)
            if how == "close":
                assert c.sm(leader).data == expect
            else:       # only committed entries are applied: a part of what was acknowledged
                assert all(expect[k] == v for k, v in c.sm(leader).data.items())
            for i in (1, 2, 3):
                if i != leader:
                    await c.open_node(i)
            await _all_have(c, expect)
            await _write_acked(c, expect, 200, 30)         # new writes commit
            await _all_have(c, expect)
        finally:
            await c.close_all()
    run(main())


def test_node_restarted_alone_rejoins_and_catches_up(run, tmp_path):
    async def main():
        c = WalCluster(tmp_path)
        expect: dict = {}
        try:
            leader = await c.start_all()
            await _write_acked(c, expect, 0, 30)
            down = next(i for i in (1, 2, 3) if i != leader)
            await c.close_node(down)
            # Far enough ahead that the leader purged what `down` lacks: it needs a snapshot.
            await _write_acked(c, expect, 30, 120, batch=True)
            await _write_acked(c, expect, 150, 10)
            await c.open_node(down)
            await _all_have(c, expect)
            # What it installed and replayed is on its disk: restart it once more, alone.
            await c.close_node(down)
            r = await c.open_node(down)
            await r.wait(WAIT).applied_index(r.metrics.committed.index)
            data = {k: v for k, v in c.sm(down).data.items() if k != "sync"}
            assert data == expect
            await _all_have(c, expect)
        finally:
            await c.close_all()
    run(main())


def test_failed_fdatasync_stops_the_node_at_once_and_loses_nothing_acknowledged(run, tmp_path):
    async def main():
        faulty = {i: FaultyOs() for i in (1, 2, 3)}
        c = WalCluster(tmp_path)
        expect: dict = {}
        try:
            leader = await c.start_all({i: {"_os": faulty[i]} for i in (1, 2, 3)})
            await _write_acked(c, expect, 0, 20)
            faulty[leader].fail["fdatasync"] = errno.EIO
            futs = [c.rafts[leader].client_write(kv(f"k{j}", j)) for j in range(20, 30)]
            outcomes = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), WAIT)
            r = c.rafts[leader]
            await r.wait(WAIT).state(ServerState.SHUTDOWN)
            cause = r.metrics.running_state
            assert cause is not None and "EIO" in repr(cause.__cause__), repr(cause)
            assert isinstance(cause.__cause__, StorageError)
            maybe = {}
            for j, o in zip(range(20, 30), outcomes):
                if isinstance(o, BaseException):
                    # Appended but not known to be applied: the node stopped.
                    assert isinstance(o, (OutcomeUnknown, RaftError)), repr(o)
                    maybe[f"k{j}"] = j
                else:
                    expect[f"k{j}"] = j      # committed on the two followers before the stop
            with pytest.raises(RaftError):
                await r.client_write(kv("after", 1))
            c.router.isolate(leader)
            c.stopped.add(leader)
            c.router.remove(leader)
            await _all_have(c, expect, maybe=maybe)
            # The failed node, reopened on a healthy disk, catches up with every acknowledged write.
            await c.stores[leader][0].close()
            faulty[leader].fail.clear()
            await c.open_node(leader)
            await _all_have(c, expect, maybe=maybe)
        finally:
            await c.close_all()
    run(main())
