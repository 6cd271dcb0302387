"""Backup and restore with real `serve` processes: a backup saved during writes holds exactly
the acknowledged writes up to its revision; restored into a new directory it serves as a
one-voter cluster that elects itself; a corrupt or foreign file is refused and nothing is written."""
import asyncio
import json
import os

from kv_support import PutWriters, ServeProcess, cli, cli_sync, free_ports, node_args, start_serve_cluster
from openraft_fast.kv import KvClient


def test_backup_during_writes_and_restore(run, tmp_path):
    async def body():
        ports = {i: tuple(free_ports(2)) for i in (1, 2, 3, 7)}
        procs = await start_serve_cluster(str(tmp_path), (1, 2, 3),
                                          ("--snapshot-policy", "500", "--watch-history", "1000"), ports=ports)
        nodes = node_args(procs)
        assert (await cli("cluster", "init", "--endpoint", procs[1].url, *nodes))[0] == 0
        ep = ",".join(p.url for p in procs.values())
        backup = tmp_path / "kv.backup"
        async with PutWriters(procs[i].url for i in procs) as writers:
            await asyncio.sleep(1.0)
            rc, out, err = await cli("cluster", "snapshot", "save", str(backup), "--endpoints", ep)
            assert rc == 0, err
            saved = json.loads(out)
            await asyncio.sleep(0.5)
        acked, unknown = writers.acked, writers.unknown      # key -> (value, revision); outcome unknown
        for p in procs.values():
            assert await p.terminate() == 0
        assert saved["bytes"] == os.path.getsize(backup) and saved["keys"] > 0
        rev = saved["revision"]

        # restore as node 7 of a new cluster, and serve it: it elects itself
        data7 = str(tmp_path / "n7")
        raft7, http7 = (f"127.0.0.1:{p}" for p in ports[7])
        rc, out, err = await cli("restore", str(backup), "--data", data7, "--id", "7", "--raft", raft7, "--http", http7)
        assert rc == 0 and json.loads(out)["revision"] == rev, err
        n7 = ServeProcess(7, *ports[7], data7)
        await n7.start()
        await n7.wait_http()
        try:
            async with KvClient([n7.url], timeout=10.0) as kv:
                items = {i.key: (i.value, i.revision) for i in await kv.list("w")}
                # exactly the acknowledged writes up to the revision (and maybe ones whose outcome was unknown)
                want = {k: v for k, v in acked.items() if v[1] <= rev}
                assert {k: items[k] for k in want if k in items} == want and set(want) <= set(items)
                extra = set(items) - set(want)
                assert extra <= unknown, sorted(extra)[:5]
                assert all(r <= rev for _, r in items.values())
                assert len(items) == saved["keys"]
                assert await kv.put("after", "restore") > rev        # the log goes on after the backup
            rc, out, err = await cli("cluster", "status", "--json", "--endpoints", n7.url)
            st = json.loads(out)
            assert rc == 0 and st["leader"] == 7 and [m["id"] for m in st["members"]] == [7], out
        finally:
            assert await n7.terminate() == 0, n7.log()
    run(body())


def test_a_corrupt_or_foreign_file_is_refused_and_nothing_is_written(tmp_path):
    from openraft_fast.kv.backup import pack_backup
    from openraft_fast.kv.state_machine import KvStateMachine
    from openraft_fast import LeaderId, LogId
    import msgpack
    good = pack_backup(LogId(LeaderId(3, 1), 42), 1, msgpack.packb([1, [["k", "v", 40]]]))
    cases = {"flipped": good[:30] + bytes([good[30] ^ 1]) + good[31:], "short": good[:-3],
             "foreign": b'{"not": "a backup"}', "empty": b""}
    for name, data in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        target = tmp_path / f"data-{name}"
        rc, out, err = cli_sync("restore", str(f), "--data", str(target), "--id", "1", "--raft", "127.0.0.1:1",
                                "--http", "127.0.0.1:2")
        assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1, (name, rc, out, err)
        assert ("not an openraft-fast KV backup" in err or "corrupt" in err or "truncated" in err), err
        assert not target.exists(), name
    # a good file into a directory that is not empty: refused, nothing touched
    f = tmp_path / "good"
    f.write_bytes(good)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("mine")
    rc, out, err = cli_sync("restore", str(f), "--data", str(busy), "--id", "1", "--raft", "127.0.0.1:1",
                            "--http", "127.0.0.1:2")
    assert rc == 1 and "not an empty directory" in err and os.listdir(busy) == ["x"]
    rc, out, err = cli_sync("restore", str(f), "--data", str(tmp_path / "fresh"), "--id", "1", "--raft", "127.0.0.1:1",
                            "--http", "127.0.0.1:2")
    assert rc == 0 and json.loads(out) == {"revision": 42, "keys": 1, "data": str(tmp_path / "fresh")}, err
    sm = KvStateMachine(str(tmp_path / "fresh" / "snapshot"))
    assert sm.get("k").value == "v" and sm.applied.index == 42
