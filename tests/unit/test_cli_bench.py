"""The `openraft-fast` command and the bench figures a newcomer meets first."""
import pytest

from openraft_fast import __version__
from openraft_fast.bench.results import BenchResult, format_table, percentile, results_json
from openraft_fast.cli.main import main


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["--version"])
    assert ei.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 2            # no command: a usage error (tests/unit/test_cli_help.py)
    err = capsys.readouterr().err
    assert "usage: openraft-fast" in err and "bench" in err


def test_bench_json_to_a_missing_directory_fails_before_running(tmp_path, capsys):
    missing = tmp_path / "no-such-dir" / "out.json"
    assert main(["bench", "--json", str(missing), "--clients", "1", "--seconds", "30"]) == 2
    assert "--json" in capsys.readouterr().err
    assert not missing.exists()


def test_one_percentile_definition():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7], 0.99) == 7
    assert percentile([], 0.5) == 0.0
    assert percentile([1, 2, 3], 0.5) == 2


def test_inverse_rate_is_not_called_a_latency():
    r = BenchResult("local", 3, 1, 1, 0, 50_000.0, 20.0, 15.0, 40.0, 1000, 1.0)
    table = format_table([r])
    assert "us/op" not in table and "1e6/rate" in table
    assert results_json([r])["results"][0]["inverse_rate_us"] == 20.0


# ---- B3 options (--transport tcp) --------------------------------------------------------

def _bench_args(*argv):
    from openraft_fast.cli.main import build_parser
    return build_parser().parse_args(["bench", *argv])


def test_tcp_options_parse():
    a = _bench_args("--transport", "tcp", "--nodes", "3", "--clients", "1,256", "--payload", "16,256",
                    "--batch", "1024", "--peer", "pysyncobj", "--seconds", "0.5", "--json", "out.json")
    assert (a.transport, a.nodes, a.clients, a.payload, a.batch, a.peer, a.seconds, a.json) == \
        ("tcp", [3], [1, 256], [16, 256], 1024, "pysyncobj", 0.5, "out.json")


def test_payload_is_a_list_and_zero_still_works():
    assert _bench_args("--payload", "0").payload == [0]
    assert _bench_args("--payload", "16").payload == [16]
    assert _bench_args("--payload", "0,16, 256").payload == [0, 16, 256]
    a = _bench_args()
    assert a.payload is None and a.clients is None and a.peer is None and a.transport == "local"


@pytest.mark.parametrize("argv", [
    ["--payload", "-1"], ["--payload", "16,-3"], ["--payload", "sixteen"], ["--payload", ","],
    ["--clients", "0"], ["--clients", "1,x"], ["--batch", "0"], ["--seconds", "-1"],
    ["--transport", "udp"], ["--peer", "etcd"],
    ["--nodes", "0"], ["--nodes", "3,x"], ["--nodes", "3,0"], ["--nodes", ""],
    ["--log-entries", "-1"], ["--log-entries", "0"], ["--log-entries", "ten"],
])
def test_bad_bench_options_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as ei:
        _bench_args(*argv)
    assert ei.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_peer_needs_tcp(capsys):
    assert main(["bench", "--peer", "pysyncobj", "--clients", "1", "--seconds", "30"]) == 2
    assert "--peer needs --transport tcp" in capsys.readouterr().err


def test_tcp_needs_a_follower(capsys):
    assert main(["bench", "--transport", "tcp", "--nodes", "1", "--clients", "1", "--seconds", "30"]) == 2
    assert "--nodes >= 2" in capsys.readouterr().err


def test_missing_pysyncobj_is_said_clearly(monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_pysyncobj(name, *args, **kwargs):
        if name == "pysyncobj" or name.startswith("pysyncobj."):
            raise ImportError("No module named 'pysyncobj'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pysyncobj)
    assert main(["bench", "--transport", "tcp", "--peer", "pysyncobj", "--clients", "1", "--seconds", "30"]) == 2
    err = capsys.readouterr().err
    assert "pysyncobj package is not installed" in err and "pip install" in err


def _row(system, clients, payload, rate):
    return BenchResult("tcp", 3, clients, 1, payload, rate, 1e6 / rate, 10.0, 20.0, 100, 1.0, system, 3.5, 1.25)


def test_ratios_compare_ours_with_the_floor_and_the_best_peer():
    from openraft_fast.bench.results import format_ratios
    rows = [_row("ours", 1, 16, 8_000.0), _row("floor", 1, 16, 10_000.0),
            _row("pysyncobj", 1, 16, 10.0), _row("pysyncobj-nobatch", 1, 16, 800.0),
            _row("ours", 256, 16, 300_000.0), _row("floor", 256, 16, 250_000.0)]
    lines = format_ratios(rows).splitlines()
    assert len(lines) == 2
    assert "clients=1 " in lines[0] and "ours/floor   0.80x" in lines[0]
    assert "ours/pysyncobj-nobatch (its best)     10.0x" in lines[0]
    assert "clients=256" in lines[1] and "ours/floor   1.20x" in lines[1] and "pysyncobj" not in lines[1]
    # Reference rows alone give no ratio; the table shows which system a row is.
    assert format_ratios([_row("floor", 1, 16, 1.0)]) == ""
    # Rows of several node counts (--nodes 3,5): a line per count, which names it.
    import dataclasses
    five = [dataclasses.replace(r, nodes=5) for r in rows[4:]]
    lines = format_ratios(rows[4:] + five).splitlines()
    assert lines == [f"nodes={n} clients=256   payload=16    ours/floor   1.20x" for n in (3, 5)]
    table = format_table(rows)
    assert table.splitlines()[0].startswith("system") and "pysyncobj-nobatch" in table
    assert results_json(rows)["results"][0]["system"] == "ours"


def test_cpu_columns_and_unknown_cpu():
    import json
    import math
    known = _row("ours", 1, 16, 8_000.0)
    unknown = BenchResult("local", 3, 1, 1, 0, 50_000.0, 20.0, 15.0, 40.0, 1000, 1.0)   # no CPU figures
    assert math.isnan(unknown.cpu_us) and math.isnan(unknown.follower_cpu_us)
    lines = format_table([known, unknown]).splitlines()
    assert lines[0].split()[-4:] == ["cpu", "us/e", "foll", "us/e"]
    assert lines[2].split()[-2:] == ["3.50", "1.25"] and lines[3].split()[-2:] == ["-", "-"]
    out = results_json([known, unknown])["results"]
    assert (out[0]["cpu_us"], out[0]["follower_cpu_us"]) == (3.5, 1.25)
    assert out[1]["cpu_us"] is None and out[1]["follower_cpu_us"] is None
    json.loads(json.dumps(out, allow_nan=False))      # strict JSON: no NaN


def test_cpu_seconds_reads_this_process_and_children():
    import subprocess
    import sys
    from openraft_fast.bench.results import cpu_seconds
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.2: pass\nprint(1, flush=True)\ninput()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"1"      # it has burned 0.2 s of CPU
        mine, theirs = cpu_seconds([child.pid])
        assert mine > 0 and theirs >= 0.15
        gone = cpu_seconds([2 ** 22 + 12345])[1]            # no such process: unknown, not an error
        assert gone != gone
    finally:
        child.kill()
        child.wait(10)


def test_a_failed_tcp_run_is_reported_not_a_traceback(monkeypatch, capsys):
    from openraft_fast.bench import tcp
    from openraft_fast.errors import Timeout

    async def child_never_ready(*args, **kwargs):       # fault injection: a follower that never serves
        raise Timeout("bench child openraft_fast.bench.node --id 2 not ready in 20.0s")

    monkeypatch.setattr(tcp, "bench_tcp", child_never_ready)
    assert main(["bench", "--transport", "tcp", "--clients", "1", "--seconds", "30"]) == 1
    err = capsys.readouterr().err
    assert "bench --transport tcp failed: Timeout" in err and "not ready" in err


# ---- B6: scale (--nodes list, --log-entries) and --profile ------------------------------

def test_nodes_is_a_list_and_a_plain_int_still_works():
    assert _bench_args().nodes == [3]
    assert _bench_args("--nodes", "5").nodes == [5]
    assert _bench_args("--nodes", "3,5,7").nodes == [3, 5, 7]
    assert _bench_args("--log-entries", "10000000").log_entries == 10_000_000
    assert _bench_args().log_entries is None and _bench_args().profile is None


def test_node_costs_are_relative_to_the_fewest_voters():
    from openraft_fast.bench.scale import format_node_costs
    rows = [BenchResult("local", n, 256, 1, 0, 1e6 / us, us, 10.0, 20.0, 100, 1.0, "ours", cpu)
            for n, us, cpu in ((3, 2.0, 1.0), (5, 2.5, 1.5), (7, 2.64, 2.0))]
    lines = format_node_costs(rows).splitlines()
    assert "5 voters cost 1.25x of 3 (cpu 1.50x)" in lines[0]
    assert "7 voters cost 1.32x of 3 (cpu 2.00x)" in lines[0]
    assert "target: 7 voters <= 1.5x of 3" in lines[-1]
    assert format_node_costs(rows[:1]) == ""            # one node count: nothing to compare


def test_bench_nodes_list_gives_a_row_per_count_and_the_cost_line(tmp_path, capsys):
    import json
    out = tmp_path / "b6.json"
    assert main(["bench", "--nodes", "3,5", "--clients", "16", "--seconds", "0.3", "--json", str(out)]) == 0
    stdout = capsys.readouterr().out
    rows = json.loads(out.read_text())["results"]
    assert [r["nodes"] for r in rows] == [3, 5]
    assert all(r["put_per_s"] > 0 and r["log_entries"] is None for r in rows)
    line = next(x for x in stdout.splitlines() if "voters cost" in x)
    ratio = float(line.split("5 voters cost ")[1].split("x")[0])
    assert 0 < ratio < 100


def test_bench_log_entries_fills_keeps_and_reports_memory(tmp_path):
    """In a process of its own, as a user runs it: the RSS the fill adds is only measurable in a
    process whose heap holds no memory freed by earlier tests."""
    import json
    import subprocess
    import sys
    out = tmp_path / "b6.json"
    proc = subprocess.run([sys.executable, "-m", "openraft_fast.cli", "bench", "--log-entries", "200000",
                           "--payload", "16", "--clients", "16", "--seconds", "0.3", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stdout = proc.stdout
    full, empty = json.loads(out.read_text())["results"]
    assert full["log_entries"] >= 200_000 and 0 < full["rss_per_entry"] < 4096
    assert empty["log_entries"] < 100 and empty["rss_per_entry"] is None
    assert full["gc_slow_passes"] >= 0 and empty["gc_slow_passes"] >= 0 and full["gc_longest_ms"] >= 0
    assert full["put_per_s"] > 0 and empty["put_per_s"] > 0
    assert "log entries" in stdout and "rss B/e" in stdout
    assert "payload + 16 = 32 B" in stdout and "snapshot_policy='never'" in stdout
    assert "fill: 199,998 entries" in stdout and "STOPPED" not in stdout


def test_gc_pauses_are_seen_and_a_long_one_explains_a_lost_leader(capsys):
    import gc
    from openraft_fast import Config
    from openraft_fast.bench.scale import GcPauses, _explain_stall
    with GcPauses() as watch:
        gc.collect(0)
        gc.collect()
    gc.collect()                            # after the block: not watched any more
    assert len(watch.pauses) == 2 and min(watch.pauses) >= 0
    config = Config(election_timeout_min=1.0, election_timeout_max=2.0, heartbeat_interval=0.1)
    _explain_stall([0.2], config)
    assert capsys.readouterr().err == ""
    _explain_stall([0.2, 1.5], config)
    assert "paused every node for 1,500 ms, longer than the election timeout (1-2 s)" in capsys.readouterr().err


def test_log_entries_needs_local_mem_and_memory_it_has(monkeypatch, capsys):
    assert main(["bench", "--transport", "tcp", "--log-entries", "1000", "--clients", "1", "--seconds", "30"]) == 2
    assert "--log-entries is for --transport local" in capsys.readouterr().err
    from openraft_fast.bench import scale as bench_scale
    monkeypatch.setattr(bench_scale, "available_memory", lambda: 2.0 ** 30)
    assert main(["bench", "--log-entries", "10000000", "--payload", "65536", "--clients", "1",
                 "--seconds", "30"]) == 2
    assert "--log-entries 10,000,000: the fill needs about" in capsys.readouterr().err


def test_bench_profile_writes_a_loadable_pstats_file(tmp_path, capsys):
    import pstats
    path = tmp_path / "bench.pstats"
    assert main(["bench", "--clients", "4", "--seconds", "0.3", "--profile", str(path)]) == 0
    captured = capsys.readouterr()
    stats = pstats.Stats(str(path))
    assert stats.total_calls > 0
    # The bench's writes were seen: Raft.client_write is the compiled executor's write.
    assert any(fn[2].startswith("<method 'write' of 'openraft_fast._core.executor.Executor") for fn in stats.stats)
    assert "top 25 by tottime" in captured.err and f"profiled: {path}" in captured.out
    missing = tmp_path / "no-such-dir" / "x.pstats"
    assert main(["bench", "--profile", str(missing), "--clients", "1", "--seconds", "30"]) == 2
    assert "--profile" in capsys.readouterr().err and not missing.exists()
