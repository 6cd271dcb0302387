"""`openraft-fast bench --service http` end to end: three real `serve` processes, wrk as the
load, and the engine's own TCP + WAL rows in the same run. Checks that every row is measured
for real (speed itself is for the benchmarks, never asserted here), and that the flags that
do not apply are refused."""
import json
import shutil

import pytest

from kv_support import cli_sync


def _measure(tmp_path, load, service="http"):
    out_file = tmp_path / f"service-{load}.json"
    rc, out, err = cli_sync("bench", "--service", service, *(["--load", load] if service == "http" else []),
                            "--clients", "1,4", "--seconds", "1", "--json", str(out_file), timeout=180)
    return rc, out, err, (json.loads(out_file.read_text())["results"] if rc == 0 else None)


def _check(rows, out, load, service="http"):
    rows_of = [r for r in rows if r["system"] == "service"]
    engine = [r for r in rows if r["system"] == "ours" and r["transport"] == "tcp"]
    assert sorted(r["clients"] for r in rows_of) == [1, 4] == sorted(r["clients"] for r in engine)
    for r in rows_of + engine:
        assert r["put_per_s"] > 0 and r["payload"] == 16 and 0 < r["p50_us"] <= r["p99_us"]
        assert r["cpu_us"] is not None and r["cpu_us"] > 0
    assert all(r["transport"] == service for r in rows_of)
    assert "service/engine(tcp+wal" in out and f"load generator: {load}" in out


def test_bench_service_binary(tmp_path):
    rc, out, err, rows = _measure(tmp_path, "binary", "binary")
    assert rc == 0, err
    _check(rows, out, "binary", "binary")


def test_bench_service_http_with_our_load_client(tmp_path):
    rc, out, err, rows = _measure(tmp_path, "python")
    assert rc == 0, err
    _check(rows, out, "python")


def test_bench_service_http_with_wrk_or_a_clear_refusal_without_it(tmp_path):
    rc, out, err, rows = _measure(tmp_path, "wrk")
    if shutil.which("wrk") is None:
        assert rc == 2 and "apt install wrk" in err and "--load python" in err
    else:
        assert rc == 0, err
        _check(rows, out, "wrk")


@pytest.mark.parametrize("args", [
    ["--service", "http", "--transport", "tcp"], ["--service", "http", "--nodes", "5"],
    ["--service", "http", "--batch", "8"], ["--service", "http", "--floors"], ["--service", "grpc"],
    ["--load", "python"], ["--service", "binary", "--load", "wrk"]])
def test_bench_service_refuses_flags_that_do_not_apply(args):
    rc, _, err = cli_sync("bench", *args)
    assert rc == 2 and err.strip(), err


def test_bench_service_control(tmp_path):
    """Every control-plane row is measured (watchers got every event, keepalives, txns and
    lock cycles completed); no speed is asserted."""
    out_file = tmp_path / "control.json"
    rc, out, err = cli_sync("bench", "--service", "control", "--watchers", "20", "--seconds", "0.5",
                            "--json", str(out_file), timeout=180)
    assert rc == 0, err
    rows = {r["bench"]: r for r in json.loads(out_file.read_text())}
    assert sorted(rows) == ["lease keepalive", "lock cycle", "transaction", "watch fan-out"]
    assert all(r["rate"] > 0 for r in rows.values())
    assert "20 watchers" in rows["watch fan-out"]["note"] and "events/s" in out
