"""Raft nodes as separate OS processes (node_runner) over TCP on 127.0.0.1."""
import asyncio

from badinput import cases, send_raw
from proc_support import CommandFailed, ProcCluster
from tls_support import write_tls_dir


def test_three_processes_elect_and_replicate(run, loop_kind, tmp_path):
    async def body():
        async with ProcCluster(str(tmp_path), loop_kind) as c:
            lid = await c.start([1, 2, 3])
            last = 0
            for k in range(20):
                last = (await c.nodes[lid].call("write", key=f"k{k}", value=k))["index"]
            await c.wait_applied([1, 2, 3], last)
            for i in (1, 2, 3):
                assert (await c.nodes[i].call("get", key="k19"))["value"] == 19
            r = await c.nodes[lid].call("read", key="k7")
            assert r["value"] == 7 and r["index"] >= last
            follower = next(i for i in (1, 2, 3) if i != lid)
            r = await c.nodes[follower].call("read", key="k19")      # a follower read over TCP
            assert r["value"] == 19 and r["index"] >= last
            try:
                await c.nodes[follower].call("write", key="x", value=1)
                raise AssertionError("a follower accepted a write")
            except CommandFailed as exc:
                assert exc.error == "ForwardToLeader"

    run(body(), timeout=60)


def test_kill9_leader_new_leader_keeps_acknowledged_writes_and_restart_rejoins(run, loop_kind, tmp_path):
    """Durable logs (--wal): the killed leader restarts under its own id and port and catches up."""
    async def body():
        async with ProcCluster(str(tmp_path), loop_kind) as c:
            ids = [1, 2, 3]
            for i in ids:
                await c.spawn(i, "--wal", str(tmp_path / f"wal{i}"))
            await c.nodes[1].call("init", nodes={str(i): c.nodes[i].addr for i in ids})
            lid = await c.wait_leader(ids)
            acked = {}

            async def writer(n):
                try:
                    await c.nodes[lid].call("write", key=f"w{n}", value=n, timeout=5.0)
                    acked[f"w{n}"] = n
                except (CommandFailed, ConnectionError, asyncio.TimeoutError):
                    pass      # in flight at the kill: outcome unknown, not acknowledged

            for n in range(30):
                await writer(n)
            inflight = [asyncio.ensure_future(writer(n)) for n in range(30, 60)]
            old_port = c.nodes[lid].port
            await c.nodes[lid].kill9()
            await asyncio.gather(*inflight)
            survivors = [i for i in ids if i != lid]
            new = await c.wait_leader(survivors)
            assert new != lid
            idx = (await c.nodes[new].call("write", key="after", value=1))["index"]
            await c.wait_applied(survivors, idx)
            for i in survivors:
                keys = set((await c.nodes[i].call("keys"))["keys"])
                missing = set(acked) - keys
                assert not missing, f"node {i} lost acknowledged writes {sorted(missing)}"
            # The old leader comes back from its WAL on its old port and follows.
            await c.spawn(lid, "--wal", str(tmp_path / f"wal{lid}"), port=old_port)
            await c.wait_applied([lid], idx)
            assert (await c.nodes[lid].call("get", key="after"))["value"] == 1
            # A restarted leader stands for election at once (under a new leader id), so the
            # leader may change again; all three agree on one and it takes writes.
            final = await c.wait_leader(ids)
            idx = (await c.nodes[final].call("write", key="rejoined", value=lid))["index"]
            await c.wait_applied(ids, idx)

    run(body(), timeout=90)


def test_memory_node_rejoins_under_new_id_as_learner(run, loop_kind, tmp_path):
    """Memory stores: a killed follower lost its log and vote, so it comes back as node 4
    (a learner that catches up), then replaces the dead voter."""
    async def body():
        async with ProcCluster(str(tmp_path), loop_kind) as c:
            lid = await c.start([1, 2, 3])
            for n in range(20):
                await c.nodes[lid].call("write", key=f"k{n}", value=n)
            dead = next(i for i in (1, 2, 3) if i != lid)
            await c.nodes[dead].kill9()
            n4 = await c.spawn(4)
            await c.nodes[lid].call("add_learner", node=4, addr=n4.addr, blocking=True)
            live = [i for i in (1, 2, 3) if i != dead]
            await c.nodes[lid].call("change_membership", members=live + [4])
            idx = (await c.nodes[lid].call("write", key="last", value=1))["index"]
            await c.wait_applied([4], idx)
            st = await c.status(4)
            assert st["voters"] == sorted(live + [4]) and st["state"] == "FOLLOWER"
            assert (await n4.call("get", key="k19"))["value"] == 19

    run(body(), timeout=90)


def test_multi_mib_snapshot_streams_to_learner_while_writes_go_on(run, loop_kind, tmp_path):
    async def body():
        opts = ("--snapshot-policy", "100", "--keep-logs", "0", "--chunk-size", str(256 * 1024),
                "--election-min", "1.0", "--election-max", "2.0")   # loaded machine: no spurious election
        async with ProcCluster(str(tmp_path), loop_kind, *opts) as c:
            lid = await c.start([1, 2, 3])
            for part in range(4):      # 400 values of 16 KiB: a snapshot of about 6.5 MiB
                await c.nodes[lid].call("write_bulk", count=100, size=16 * 1024, prefix=f"b{part}-")
            idx = (await c.nodes[lid].call("write", key="x", value=0))["index"]
            await c.wait_applied([1, 2, 3], idx)
            st = await c.status(lid)
            assert st["snapshot"] >= 300, st
            term = st["term"]
            n4 = await c.spawn(4)
            join = asyncio.ensure_future(c.nodes[lid].call("add_learner", node=4, addr=n4.addr, blocking=True,
                                                          timeout=30.0))
            n = 0
            while not join.done() and n < 500:
                await c.nodes[lid].call("write", key="x", value=n)
                n += 1
            await join
            idx = (await c.nodes[lid].call("write", key="x", value=-1))["index"]
            await c.wait_applied([4], idx)
            st4 = await c.status(4)
            assert st4["snapshot"] >= 300, st4       # it got the data by snapshot, not by log
            keys = (await n4.call("keys"))["keys"]
            assert len([k for k in keys if k.startswith("b")]) == 400
            assert (await n4.call("get", key="x"))["value"] == -1
            for i in (1, 2, 3):
                assert (await c.status(i))["term"] == term, "an election happened during the transfer"

    run(body(), timeout=90)


def test_mutual_tls_across_processes(run, loop_kind, tmp_path):
    async def body():
        tls = write_tls_dir(tmp_path / "tls")
        async with ProcCluster(str(tmp_path), loop_kind, "--tls", str(tls)) as c:
            lid = await c.start([1, 2, 3])
            idx = 0
            for k in range(10):
                idx = (await c.nodes[lid].call("write", key=f"k{k}", value=k))["index"]
            await c.wait_applied([1, 2, 3], idx)
            for i in (1, 2, 3):
                assert (await c.nodes[i].call("get", key="k9"))["value"] == 9
            # A node with a certificate from another CA cannot join: its server refuses the
            # leader and the leader refuses it.
            stranger = await c.spawn(4, "--tls", str(write_tls_dir(tmp_path / "other")))
            await c.nodes[lid].call("add_learner", node=4, addr=stranger.addr, blocking=False)
            idx = (await c.nodes[lid].call("write", key="after", value=1))["index"]
            await c.wait_applied([1, 2, 3], idx)
            assert (await stranger.call("status"))["applied"] == 0

    run(body(), timeout=60)


def test_bad_input_against_a_node_process(run, loop_kind, tmp_path):
    async def body():
        async with ProcCluster(str(tmp_path), loop_kind) as c:
            lid = await c.start([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lid)
            for target in (lid, follower):
                for case in cases("openraft_fast", target):
                    out = await send_raw(c.nodes[target].port, case.data, case.half_close)
                    assert out.closed, f"{case.name}: the node kept the connection open"
                    if case.reply_reason is not None:
                        assert case.reply_reason in out.replies[0][1].reason, case.name
                    await c.nodes[lid].call("write", key=case.name, value=target)
            idx = (await c.nodes[lid].call("write", key="end", value=1))["index"]
            await c.wait_applied([1, 2, 3], idx)
            for target in (lid, follower):
                text = c.nodes[target].log_text()
                for case in cases("openraft_fast", target):
                    assert case.log_reason in text, f"node {target}: nothing logged for {case.name}"

    run(body(), timeout=60)
