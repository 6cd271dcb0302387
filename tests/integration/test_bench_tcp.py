"""Benchmark B3 end to end: real follower processes on 127.0.0.1 (free ports chosen at run time),
the TCP floor, PySyncObj, our Raft over TCP and the `openraft-fast bench --transport tcp`
command. These check that every row is measured for real (positive rates, consistent
percentiles); speed itself is for the benchmarks, never asserted here."""
import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from openraft_fast import _aio
from openraft_fast.bench.tcp import bench_tcp
from openraft_fast.bench.tcp_floor import FloorLeader
from openraft_fast.bench.procs import Children
from openraft_fast.errors import NetworkError, Timeout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BODY_TIMEOUT = 60.0


def _run(coro, use_uvloop=None, timeout=BODY_TIMEOUT):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return _aio.run(bounded(), use_uvloop=use_uvloop)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped is a zombie: gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _check_rows(results, system, clients, payloads, batch=1):
    rows = [r for r in results if r.system == system]
    assert sorted((r.payload, r.clients) for r in rows) == sorted((p, c) for p in payloads for c in clients)
    for r in rows:
        assert r.transport == "tcp" and r.nodes == 3 and r.batch == batch
        assert r.ops > 0 and r.put_per_s > 0 and r.seconds > 0
        assert r.put_per_s == pytest.approx(r.ops / r.seconds)
        assert 0 < r.p50_us <= r.p99_us
        # CPU per entry: the bench process always used some; /proc counts followers in clock
        # ticks (10 ms), so a short run may round a follower's share down to 0.
        assert r.cpu_us > 0 and r.follower_cpu_us >= 0


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_floor_rows(use_uvloop):
    results = _run(bench_tcp(3, [1, 16], 1, [0, 256], 0.3, systems=["floor"], use_uvloop=use_uvloop),
                   use_uvloop=use_uvloop)
    _check_rows(results, "floor", [1, 16], [0, 256])


def test_floor_batches():
    results = _run(bench_tcp(3, [2], 64, [16], 0.3, systems=["floor"]))
    _check_rows(results, "floor", [2], [16], batch=64)
    assert results[0].ops % 64 == 0


def test_floor_writes_fail_when_the_followers_die():
    async def body():
        async with Children([["openraft_fast.bench.tcp_floor"], ["openraft_fast.bench.tcp_floor"]]) as kids:
            leader = FloorLeader(3)
            await leader.connect([("127.0.0.1", p) for p in kids.ports])
            await asyncio.wait_for(leader.client_write(b"x"), 10.0)     # a quorum answers
            await kids.close()
            # Every write outstanding or new fails with a typed error; none waits forever.
            with pytest.raises(NetworkError):
                await asyncio.wait_for(asyncio.gather(*(leader.client_write(b"y") for _ in range(10))), 10.0)
            with pytest.raises(NetworkError):
                await asyncio.wait_for(leader.client_write(b"z"), 10.0)
            await leader.close()
    _run(body())


def test_children_are_killed_on_exit_and_a_failing_child_is_reported():
    async def body():
        async with Children([["openraft_fast.bench.tcp_floor"]]) as kids:
            pids = kids.pids
            assert kids.alive() and all(_alive(p) for p in pids) and kids.ports[0] > 0
        assert not any(_alive(p) for p in pids)
        # A child that exits before announcing its port: a Timeout naming it, with its stderr.
        with pytest.raises(Timeout, match="(?s)exited with 2 before it was ready.*unrecognized arguments: --bogus"):
            async with Children([["openraft_fast.bench.tcp_floor", "--bogus"]]):
                pass
        with pytest.raises(Timeout, match="not ready in 0.5s"):
            # A child that never announces (the stdlib's timeit, sleeping).
            async with Children([["timeit", "-n", "1", "import time; time.sleep(30)"]], ready_timeout=0.5):
                pass
    _run(body())


def test_a_child_exits_when_the_bench_process_dies():
    """kill -9 of the bench process closes the children's stdin: they exit on their own."""
    script = ("import asyncio, sys\n"
              "from openraft_fast._aio import run\n"
              "from openraft_fast.bench.procs import Children\n"
              "async def main():\n"
              "    async with Children([['openraft_fast.bench.tcp_floor']]) as kids:\n"
              "        print(kids.pids[0], flush=True)\n"
              "        await asyncio.sleep(60)\n"
              "run(main())\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait(10)
        if child is not None and _alive(child):
            os.kill(child, 9)


def test_pysyncobj_rows():
    pytest.importorskip("pysyncobj", reason="the optional bench extra")
    results = _run(bench_tcp(3, [1, 8], 1, [16], 0.3, systems=["pysyncobj-nobatch"]))
    _check_rows(results, "pysyncobj-nobatch", [1, 8], [16])


def test_our_raft_rows_with_batches():
    results = _run(bench_tcp(3, [1, 4], 16, [16], 0.3, systems=["ours"]))
    _check_rows(results, "ours", [1, 4], [16], batch=16)


def test_cli_tcp_run_end_to_end(tmp_path):
    out = tmp_path / "b3.json"
    proc = subprocess.run([sys.executable, "-m", "openraft_fast.cli", "bench", "--transport", "tcp",
                           "--clients", "1", "--seconds", "0.3", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["results"]
    assert sorted((r["system"], r["payload"]) for r in rows) == \
        [("floor", 16), ("floor", 256), ("ours", 16), ("ours", 256)]
    assert all(r["clients"] == 1 and r["put_per_s"] > 0 and 0 < r["p50_us"] <= r["p99_us"] for r in rows)
    assert all(r["cpu_us"] > 0 and r["follower_cpu_us"] >= 0 for r in rows)
    table = proc.stdout.splitlines()
    assert table[0].split()[:2] == ["system", "transport"]
    assert sum(1 for line in table if line.startswith("ours ")) == 2
    assert sum(1 for line in table if line.startswith("floor ")) == 2
    assert sum(1 for line in table if "ours/floor" in line) == 2


def test_cli_tcp_run_with_pysyncobj_side_by_side():
    pytest.importorskip("pysyncobj", reason="the optional bench extra")
    proc = subprocess.run([sys.executable, "-m", "openraft_fast.cli", "bench", "--transport", "tcp", "--clients", "1",
                           "--payload", "16", "--batch", "4", "--peer", "pysyncobj", "--seconds", "0.3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[2:]
            if line.split() and line.split()[0] in ("ours", "floor", "pysyncobj", "pysyncobj-nobatch")}
    assert sorted(rows) == ["floor", "ours", "pysyncobj", "pysyncobj-nobatch"]
    # columns: system transport nodes clients batch payload put/s ...
    assert rows["ours"][4] == rows["floor"][4] == "4"                       # --batch for ours and the floor
    assert rows["pysyncobj"][4] == rows["pysyncobj-nobatch"][4] == "1"      # PySyncObj has no batch call
    assert all(float(r[6].replace(",", "")) > 0 for r in rows.values())
    ratio = [line for line in proc.stdout.splitlines() if "ours/floor" in line]
    assert len(ratio) == 1 and "(its best)" in ratio[0]
