"""openraft_fast.replicated: a replicated object served by three nodes over real TCP on
127.0.0.1, each with a WAL and snapshots in its own directory."""
import asyncio
import sys
from pathlib import Path

import pytest

from openraft_fast import ApplyError, Config, ConfigError, InvalidArgument, InvalidArgumentType, ServerState
from openraft_fast.replicated import ReplicatedNode, ReplicatedObject, command, query
from openraft_fast.testing.serve_process import free_ports

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from lock_counter import LockCounter  # noqa: E402

FAST = Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3)


class Ledger(LockCounter):
    """The example plus a query variant of each kind and a command with keyword arguments."""

    @command
    def put(self, key, value=None, *, note=""):
        self.locks[key] = [value, note]
        return self.locks[key]

    @query(lease=True)
    def value_by_lease(self):
        return self.count

    @query(local=True)
    def value_here(self):
        return self.count

    @query
    def table(self):
        return self.locks


async def start_cluster(tmp_path, cls=Ledger, config=FAST, ids=(1, 2, 3), peers=None):
    peers = peers or {i: f"127.0.0.1:{p}" for i, p in zip(ids, free_ports(len(ids)))}
    objs = {i: cls() for i in ids}
    nodes = {}
    for i in ids:
        nodes[i] = await ReplicatedNode.start(objs[i], i, peers, tmp_path / f"n{i}", config=config)
    await wait_leader(nodes)
    return peers, objs, nodes


async def wait_leader(nodes, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        leaders = [i for i, n in nodes.items() if n.raft.metrics.state == ServerState.LEADER]
        if len(leaders) == 1 and all(n.raft.current_leader() == leaders[0] for n in nodes.values()):
            return leaders[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no leader")


async def close_all(nodes):
    for n in nodes.values():
        await n.close()


def test_commands_from_every_node_apply_everywhere_in_one_order(run, tmp_path):
    async def body():
        peers, objs, nodes = await start_cluster(tmp_path)
        try:
            results = await asyncio.gather(*(objs[i].incr(i) for i in (1, 2, 3) for _ in range(20)))
            assert sorted(results) == sorted(set(results)) and max(results) == 20 * 6
            assert await objs[2].value() == 120
            assert await objs[3].value_by_lease() == 120
            assert await objs[1].put("k", [1, (2, 3)], note="n") == [[1, [2, 3]], "n"]    # tuples arrive as lists
            for i in (1, 2, 3):
                await nodes[i].raft.ensure_linearizable()
                assert objs[i].count == 120 and objs[i].locks == {"k": [[1, [2, 3]], "n"]}
                assert await objs[i].value_here() == 120
            # a query's result is a copy: changing it changes no replica
            t = await objs[1].table()
            t["k"] = "changed"
            assert objs[1].locks["k"] == [[1, [2, 3]], "n"]
        finally:
            await close_all(nodes)
    run(body())


def test_a_raising_command_is_that_callers_error_and_the_cluster_goes_on(run, tmp_path):
    async def body():
        peers, objs, nodes = await start_cluster(tmp_path)
        try:
            assert await objs[1].acquire("job", "a") is None
            with pytest.raises(ApplyError) as ei:
                await objs[2].acquire("job", "b")          # a follower or the leader: either way
            assert ei.value.kind == "KeyError" and "held by a" in ei.value.message
            with pytest.raises(ApplyError) as ei:
                await objs[3].incr("not a number")
            assert ei.value.kind == "TypeError"
            assert await objs[3].incr(2) == 2
            for i in (1, 2, 3):
                await nodes[i].raft.ensure_linearizable()
                assert objs[i].locks == {"job": "a"} and objs[i].count == 2
                assert nodes[i].raft.metrics.running_state is None
        finally:
            await close_all(nodes)
        # Restart every node on its data: the log replays, the bad calls fail the same way again
        # (no caller now), and the state is what it was.
        objs2 = {i: Ledger() for i in (1, 2, 3)}
        nodes2 = {}
        try:
            for i in (1, 2, 3):
                nodes2[i] = await ReplicatedNode.start(objs2[i], i, peers, tmp_path / f"n{i}", config=FAST)
            await wait_leader(nodes2)
            assert await objs2[2].incr() == 3
            for i in (1, 2, 3):
                await nodes2[i].raft.ensure_linearizable()
                assert objs2[i].locks == {"job": "a"} and objs2[i].count == 3
        finally:
            await close_all(nodes2)
    run(body())


def test_state_survives_restarts_through_snapshots(run, tmp_path):
    async def body():
        cfg = FAST.replace(snapshot_policy=50, max_in_snapshot_log_to_keep=0)
        peers, objs, nodes = await start_cluster(tmp_path, config=cfg)
        try:
            for _ in range(4):
                await asyncio.gather(*(objs[1].incr() for _ in range(60)))
            await objs[1].put("x", b"\x00bytes")
            for i in (1, 2, 3):
                await nodes[i].raft.wait(10).snapshot(200)
        finally:
            await close_all(nodes)
        assert all((tmp_path / f"n{i}" / "snapshot" / "snapshot").exists() for i in (1, 2, 3))
        fresh = Ledger()
        node = await ReplicatedNode.start(fresh, 1, peers, tmp_path / "n1", config=cfg)
        try:
            # loaded from the snapshot before any peer is up
            assert fresh.count >= 200
            assert node.raft.metrics.snapshot.index >= 200
        finally:
            await node.close()
        objs2 = {i: Ledger() for i in (1, 2, 3)}
        nodes2 = {}
        try:
            for i in (1, 2, 3):
                nodes2[i] = await ReplicatedNode.start(objs2[i], i, peers, tmp_path / f"n{i}", config=cfg)
            await wait_leader(nodes2)
            assert await objs2[3].value() == 240
            assert (await objs2[2].table())["x"] == [b"\x00bytes", ""]
        finally:
            await close_all(nodes2)
    run(body())


def test_methods_are_plain_code_until_served_and_after_close(run, tmp_path):
    async def body():
        obj = Ledger()
        assert obj.incr(5) == 5 and obj.value() == 5       # plain calls, no node
        peers = {1: f"127.0.0.1:{free_ports(1)[0]}"}
        node = await ReplicatedNode.start(obj, 1, peers, tmp_path / "solo", config=FAST)
        try:
            await wait_leader({1: node})
            assert asyncio.iscoroutine(c := obj.incr(1)) and await c == 6
            with pytest.raises(InvalidArgument):
                await ReplicatedNode.start(obj, 1, peers, tmp_path / "again", config=FAST)
        finally:
            await node.close()
        assert obj.incr(1) == 7                             # plain again
    run(body())


def test_bad_arguments_are_refused_before_anything_is_sent(run, tmp_path):
    async def body():
        peers = {1: f"127.0.0.1:{free_ports(1)[0]}"}
        with pytest.raises(InvalidArgument):
            await ReplicatedNode.start(Ledger(), 2, peers, tmp_path / "x")            # not in peers
        with pytest.raises(InvalidArgument):
            await ReplicatedNode.start(Ledger(), 1, {1: "no-port"}, tmp_path / "x")
        with pytest.raises(InvalidArgumentType):
            await ReplicatedNode.start(object(), 1, peers, tmp_path / "x")
        obj = Ledger()
        node = await ReplicatedNode.start(obj, 1, peers, tmp_path / "y", config=FAST)
        try:
            await wait_leader({1: node})
            with pytest.raises(InvalidArgumentType):
                await obj.put("k", {1, 2})                  # a set: msgpack cannot carry it
            assert await obj.incr() == 1
        finally:
            await node.close()
    run(body())


def test_a_class_that_lost_a_command_the_log_may_hold_is_refused(run, tmp_path):
    class Smaller(ReplicatedObject):
        def __init__(self):
            self.count = 0

        @command
        def incr(self, n=1):
            self.count += n

    async def body():
        peers = {1: f"127.0.0.1:{free_ports(1)[0]}"}
        node = await ReplicatedNode.start(Ledger(), 1, peers, tmp_path / "d", config=FAST)
        await node.close()
        with pytest.raises(ConfigError) as ei:
            await ReplicatedNode.start(Smaller(), 1, peers, tmp_path / "d", config=FAST)
        assert "acquire" in str(ei.value)
        # more commands than before is fine
        node = await ReplicatedNode.start(Ledger(), 1, peers, tmp_path / "d", config=FAST)
        await node.close()
    run(body())


def test_registry_and_decorator_rules():
    assert Ledger.command_names() == ["acquire", "incr", "put", "release"]
    with pytest.raises(InvalidArgumentType):
        class Bad(ReplicatedObject):
            @command
            async def nope(self):
                pass
    with pytest.raises(InvalidArgument):
        query(lambda self: 1, lease=True, local=True)

    class Override(Ledger):
        def incr(self, n=1):            # no longer a command
            return n
    assert "incr" not in Override.command_names()


def test_the_docs_example_is_the_tested_example():
    """docs/replicated.md shows examples/lock_counter.py's class, word for word."""
    root = Path(__file__).resolve().parents[2]
    source = (root / "examples" / "lock_counter.py").read_text()
    cls = source[source.index("class LockCounter"):source.index("\n\n\nasync def main")]
    assert cls in (root / "docs" / "replicated.md").read_text()
