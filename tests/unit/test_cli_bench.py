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
