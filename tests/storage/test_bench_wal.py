"""`openraft-fast bench --store wal` (B4): the disk row and the cluster rows on WAL stores,
written where --data says and cleaned up after."""
import os

from openraft_fast.cli.main import main


def test_bench_store_wal_prints_disk_and_wal_rows_and_cleans_up(tmp_path, capsys):
    assert main(["bench", "--store", "wal", "--data", str(tmp_path), "--clients", "1,8",
                 "--seconds", "0.3", "--no-uvloop"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:6]]
    assert [r[:2] for r in rows] == [["disk", "disk"], ["disk-x3", "disk"], ["ours", "local/wal"], ["ours", "local/wal"]]
    assert [int(r[3]) for r in rows] == [1, 3, 1, 8]
    for r in rows:
        assert float(r[6].replace(",", "")) > 0, r
    assert os.listdir(tmp_path) == []


def test_bench_data_must_be_a_writable_directory(tmp_path, capsys):
    assert main(["bench", "--store", "wal", "--data", str(tmp_path / "missing"), "--seconds", "30"]) == 2
    assert "--data" in capsys.readouterr().err
