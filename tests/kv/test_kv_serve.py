"""`openraft-fast serve` as real OS processes on 127.0.0.1: a 3-node cluster set up and used
through the CLI, SIGTERM stops each node cleanly (exit 0), a restart from --data keeps the
data; a failed start is one line and exit 1; mutual TLS end to end."""
import asyncio
import json
import os

import trustme

from kv_support import ServeProcess, cli, cli_sync, free_ports


async def start_cluster(tmp, ids=(1, 2, 3), ports=None, extra=()):
    ports = ports or dict(zip(ids, zip(free_ports(len(ids)), free_ports(len(ids)))))
    procs = {i: ServeProcess(i, ports[i][0], ports[i][1], str(tmp / f"n{i}"), extra) for i in ids}
    for p in procs.values():
        await p.start()
    for p in procs.values():
        await p.wait_http()
    return procs, ports


async def stop_all(procs):
    codes = {}
    for i, p in procs.items():
        codes[i] = await p.terminate()
    return codes


def test_three_serve_processes_init_use_stop_and_restart(run, tmp_path):
    async def body():
        procs, ports = await start_cluster(tmp_path)
        try:
            ep = ",".join(p.url for p in procs.values())
            nodes = []
            for i, p in procs.items():
                nodes += ["--node", f"{i}={p.raft},{p.http}"]
            rc, out, err = await cli("cluster", "init", "--endpoint", procs[1].url, *nodes)
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
            # restart from the same data directories (same addresses: they are in the membership)
            procs, _ = await start_cluster(tmp_path, ports=ports)
            rc, out, err = await cli("kv", "list", "--prefix", "k", "--endpoints", ep)
            assert rc == 0, err
            assert [(i["key"], i["value"]) for i in json.loads(out)["items"]] == [(f"k{i}", f"v{i}") for i in range(5)]
            rc, out, err = await cli("kv", "put", "after", "restart", "--endpoints", ep)
            assert rc == 0, err
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
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = {n: str(tmp_path / f"{n}.pem") for n in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    leaf.cert_chain_pems[0].write_to_path(paths["cert"])
    leaf.private_key_pem.write_to_path(paths["key"])
    tls = ["--tls-cert", paths["cert"], "--tls-key", paths["key"], "--tls-ca", paths["ca"]]

    async def body():
        procs, _ = await start_cluster(tmp_path, ids=(1, 2), extra=tls)
        try:
            urls = ",".join("https://" + p.http for p in procs.values())
            nodes = []
            for i, p in procs.items():
                nodes += ["--node", f"{i}={p.raft},{p.http}"]
            rc, out, err = await cli("cluster", "init", "--endpoint", "https://" + procs[1].http, *nodes, *tls)
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
