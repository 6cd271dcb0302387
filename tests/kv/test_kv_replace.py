"""docs/operations.md, "Replace a dead node", run as written against real `serve` processes: a
node dies (SIGKILL) under writes; a new node joins as a learner, catches up, becomes a voter in
the dead one's place, the dead id is removed; no acknowledged write is lost."""
import asyncio
import json

from kv_support import PutWriters, ServeProcess, cli, free_ports, node_args, start_serve_cluster
from openraft_fast.kv import KvClient


def test_replace_a_dead_node(run, tmp_path):
    async def body():
        ports = {i: tuple(free_ports(2)) for i in (1, 2, 3, 4)}
        procs = await start_serve_cluster(str(tmp_path), (1, 2, 3), ports=ports)
        nodes = node_args(procs)
        rc, out, err = await cli("cluster", "init", "--endpoint", procs[1].url, *nodes)
        assert rc == 0, err
        async with PutWriters(p.url for p in procs.values()) as writers:
            await asyncio.sleep(1.0)
            await procs[3].kill()                               # node 3's machine is gone
            await asyncio.sleep(0.5)
            # the documented steps
            procs[4] = ServeProcess(4, *ports[4], str(tmp_path / "n4"))
            await procs[4].start()
            await procs[4].wait_http()
            live = ",".join(procs[i].url for i in (1, 2))
            rc, out, err = await cli("cluster", "add-learner", "--id", "4", "--raft", procs[4].raft,
                                     "--http", procs[4].http, "--endpoints", live)
            assert rc == 0, err
            rc, out, err = await cli("cluster", "change-membership", "--voters", "1,2,4", "--endpoints", live)
            assert rc == 0 and json.loads(out)["voters"] == [1, 2, 4], err
            rc, out, err = await cli("cluster", "remove-node", "--id", "3", "--endpoints", live)
            assert rc == 0 and 3 not in json.loads(out)["voters"] + json.loads(out)["learners"], err
            await asyncio.sleep(0.5)
            rc, out, err = await cli("cluster", "status", "--json", "--endpoints", live)
            status = json.loads(out)
            assert rc == 0 and [m["id"] for m in status["members"]] == [1, 2, 4], (out, err)
            assert all(m["health"] == "ok" for m in status["members"]), out
        acked = {k: v for k, (v, _) in writers.acked.items()}
        assert len(acked) > 100
        # every acknowledged write, read from the new node (linearizable: through the leader's read point)
        async with KvClient([procs[4].url], timeout=10.0) as kv:
            items = {i.key: i.value for i in await kv.list("w", limit=None)}
        lost = [k for k, v in acked.items() if items.get(k) != v]
        assert lost == [], f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
        for i in (1, 2, 4):
            assert await procs[i].terminate() == 0, procs[i].log()
    run(body())
