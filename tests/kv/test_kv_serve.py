"""`openraft-fast serve` as real OS processes on 127.0.0.1: a 3-node cluster set up and used
through the CLI, SIGTERM stops each node cleanly (exit 0), a restart from --data keeps the
data, kill -9 of the leader fails over and the node rejoins; a failed start is one line and exit 1; a node
that stops fatally exits 3; mutual TLS end to end."""
import asyncio
import json
import os
import shutil


from kv_support import ServeProcess, cli, cli_sync, free_ports, node_args, serve_tls, start_serve_cluster
from openraft_fast.kv import KvClient


async def start_cluster(tmp, ids=(1, 2, 3), ports=None, extra=()):
    procs = await start_serve_cluster(str(tmp), ids, extra, ports)
    return procs, {i: (int(p.raft.rsplit(":", 1)[1]), int(p.http.rsplit(":", 1)[1])) for i, p in procs.items()}


async def stop_all(procs):
    codes = {}
    for i, p in procs.items():
        codes[i] = await p.terminate()
    return codes


def test_three_serve_processes_init_use_stop_and_restart(run, tmp_path):
    # Snapshots every 4 entries: the restarts go through a snapshot on disk plus the log after it.
    opts = ("--snapshot-policy", "4")

    async def body():
        procs, ports = await start_cluster(tmp_path, extra=opts)
        try:
            ep = ",".join(p.url for p in procs.values())
            rc, out, err = await cli("cluster", "init", "--endpoint", procs[1].url, *node_args(procs))
            assert (rc, json.loads(out)) == (0, {"voters": [1, 2, 3]}), err
            for i in range(5):
                rc, out, err = await cli("kv", "put", f"k{i}", f"v{i}", "--endpoints", ep)
                assert rc == 0, err
            rc, out, err = await cli("kv", "get", "k4", "--endpoints", procs[3].url)
            assert rc == 0 and json.loads(out)["value"] == "v4", err
            rc, out, err = await cli("cluster", "status", "--endpoints", ep)
            assert rc == 0 and out.count("leader") >= 1 and "unreachable" not in out, out
            codes = await stop_all(procs)
            assert codes == {1: 0, 2: 0, 3: 0}, (codes, {i: p.log() for i, p in procs.items()})
            for p in procs.values():
                assert "stopped" in p.log() and "Traceback" not in p.log()
                assert os.path.exists(os.path.join(p.data, "snapshot", "snapshot")), p.log()
            # restart from the same data directories (same addresses: they are in the membership)
            procs, _ = await start_cluster(tmp_path, ports=ports, extra=opts)
            rc, out, err = await cli("kv", "list", "--prefix", "k", "--endpoints", ep)
            assert rc == 0, err
            assert [(i["key"], i["value"]) for i in json.loads(out)["items"]] == [(f"k{i}", f"v{i}") for i in range(5)]
            rc, out, err = await cli("kv", "put", "after", "restart", "--endpoints", ep)
            assert rc == 0, err
            # kill -9 the leader: the others elect a new one and the client finds it
            rc, out, err = await cli("cluster", "status", "--json", "--endpoints", ep)
            leader = json.loads(out)["leader"]
            await procs[leader].kill()
            rc, out, err = await cli("kv", "put", "after", "kill", "--endpoints", ep)
            assert rc == 0, err
            rc, out, err = await cli("kv", "get", "after", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["value"] == "kill", err
            # the killed node restarts from its data and catches up
            procs[leader] = ServeProcess(leader, *ports[leader], str(tmp_path / f"n{leader}"), opts)
            await procs[leader].start()
            await procs[leader].wait_http()
            async with KvClient([procs[leader].url]) as kv:
                item = None
                for _ in range(100):
                    item = await kv.get("after", consistency="local")
                    if item is not None and item.value == "kill":
                        break
                    await asyncio.sleep(0.1)
                assert item is not None and item.value == "kill", item
            codes = await stop_all(procs)
            assert codes == {1: 0, 2: 0, 3: 0}, codes
        finally:
            for p in procs.values():
                await p.kill()
    run(body(), timeout=120)


def test_serve_refuses_a_data_dir_of_another_node_and_a_busy_port(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "node.json").write_text('{"id": 7}')
    r, h = free_ports(2)
    rc, out, err = cli_sync("serve", "--id", "1", "--raft", f"127.0.0.1:{r}", "--http", f"127.0.0.1:{h}",
                            "--data", str(tmp_path / "d"))
    assert rc == 1 and "belongs to node 7" in err and "Traceback" not in err, err
    import socket
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        rc, out, err = cli_sync("serve", "--id", "1", "--raft", f"127.0.0.1:{r}", "--http",
                                f"127.0.0.1:{busy.getsockname()[1]}", "--data", str(tmp_path / "e"))
    finally:
        busy.close()
    assert rc == 1 and "cannot listen" in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def test_serve_with_mutual_tls(run, tmp_path):
    tls, paths = serve_tls(tmp_path)

    async def body():
        procs, _ = await start_cluster(tmp_path, ids=(1, 2), extra=tls)
        try:
            urls = ",".join("https://" + p.http for p in procs.values())
            rc, out, err = await cli("cluster", "init", "--endpoint", "https://" + procs[1].http, *node_args(procs), *tls)
            assert rc == 0, err
            rc, out, err = await cli("kv", "put", "secure", "yes", "--endpoints", urls, *tls)
            assert rc == 0, err
            rc, out, err = await cli("kv", "get", "secure", "--endpoints", "https://" + procs[2].http, *tls)
            assert rc == 0 and json.loads(out)["value"] == "yes", err
            # without a client certificate the server refuses the connection
            rc, out, err = await cli("kv", "get", "secure", "--endpoints", urls, "--tls-ca", paths["ca"],
                                     "--timeout", "1")
            assert rc == 1 and len(err.strip().splitlines()) == 1, err
            assert await stop_all(procs) == {1: 0, 2: 0}
        finally:
            for p in procs.values():
                await p.kill()
    run(body(), timeout=120)


def test_serve_exits_3_when_its_node_stops_fatally(run, tmp_path):
    """The snapshot directory turns into a file under a running node: its next snapshot
    build fails (fatal), and the process exits 3, saying why, instead of serving on."""
    async def body():
        procs, _ = await start_cluster(tmp_path, ids=(1,), extra=("--snapshot-policy", "3"))
        p = procs[1]
        try:
            async with KvClient([p.url]) as kv:
                await kv.init({1: (p.raft, p.http)})
                snapshots = os.path.join(p.data, "snapshot")
                shutil.rmtree(snapshots)
                with open(snapshots, "w") as f:
                    f.write("not a directory")
                for i in range(10):
                    try:
                        await kv.put(f"k{i}", "v")
                    except Exception:
                        break           # the node stopped under the write
            code = await asyncio.wait_for(p.proc.wait(), 30)
            log = p.log()
            assert code == 3, log
            line = next(line for line in log.splitlines() if line.startswith("openraft-fast serve: node 1 stopped"))
            assert "stopped fatally, exiting 3" in line and "state machine build_snapshot raised" in line, line
            assert "node 1: stopped" in log      # it closed its servers and its log first
        finally:
            await p.kill()
    run(body(), timeout=60)
