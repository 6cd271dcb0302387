"""Chaos tests: the runs' counts are printed at the end of the session."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from chaos_run import RESULTS  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    terminalreporter.section("chaos runs")
    for r in RESULTS:
        terminalreporter.write_line(r.line())
        if r.run_dir:
            terminalreporter.write_line(f"  kept: {r.run_dir}  replay: {r.replay}")
    total_ops = sum(r.ops.get("invoked", 0) for r in RESULTS)
    total_faults = sum(sum(r.faults.values()) for r in RESULTS)
    bad = sum(1 for r in RESULTS if not r.ok)
    terminalreporter.write_line(f"total: {len(RESULTS)} histories checked, {total_ops} operations, "
                                f"{total_faults} faults, {bad} with violations")
