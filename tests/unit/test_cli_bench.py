"""The `openraft-fast` command and the bench figures a newcomer meets first."""
import pytest

from openraft_fast import __version__
from openraft_fast.bench import BenchResult, format_table, percentile, results_json
from openraft_fast.cli import main


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["--version"])
    assert ei.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    out = capsys.readouterr().out
    assert __version__ in out and "usage: openraft-fast" in out and "bench" in out


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
    from openraft_fast.cli import build_parser
    return build_parser().parse_args(["bench", *argv])


def test_tcp_options_parse():
    a = _bench_args("--transport", "tcp", "--nodes", "3", "--clients", "1,256", "--payload", "16,256",
                    "--batch", "1024", "--peer", "pysyncobj", "--seconds", "0.5", "--json", "out.json")
    assert (a.transport, a.nodes, a.clients, a.payload, a.batch, a.peer, a.seconds, a.json) == \
        ("tcp", 3, [1, 256], [16, 256], 1024, "pysyncobj", 0.5, "out.json")


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
    from openraft_fast.bench import format_ratios
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
    from openraft_fast.bench import cpu_seconds
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
    from openraft_fast import bench
    from openraft_fast.errors import Timeout

    async def child_never_ready(*args, **kwargs):       # fault injection: a follower that never serves
        raise Timeout("bench child openraft_fast.bench_node --id 2 not ready in 20.0s")

    monkeypatch.setattr(bench, "bench_tcp", child_never_ready)
    assert main(["bench", "--transport", "tcp", "--clients", "1", "--seconds", "30"]) == 1
    err = capsys.readouterr().err
    assert "bench --transport tcp failed: Timeout" in err and "not ready" in err
