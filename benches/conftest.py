"""Per-operation summary for the microbenchmarks.

pytest-benchmark's own table shows the time of one round, which is one call for some
benchmarks and a whole batch (256 acks, 4096 appended entries, a C loop of 200k calls) for
others. Each test records its ops per round through the `per_op` fixture; this file prints the
median ns per op of every group side by side at the end of the run (also kept in each
benchmark's extra_info, so it lands in --benchmark-json / --benchmark-save output).
"""
import pytest

_ROWS = {}          # group -> {impl: (ns_per_op, unit, c_clock_ns_per_op or None)}
_COLUMNS = ("cy_py", "cy_c", "plain", "plain_columnar")


class _PerOp:
    def record(self, benchmark, impl, ops, unit="call", c_clock_ns=None):
        """`ops`: operations per benchmark round; `c_clock_ns`: the C loop's own median ns/op."""
        meta = benchmark.stats
        if meta is None:            # --benchmark-disable: the function ran once, untimed
            return
        ns = meta.stats.median * 1e9 / ops
        benchmark.extra_info.update(impl=impl, unit=unit, ops_per_round=ops, ns_per_op_median=round(ns, 2))
        if c_clock_ns is not None:
            benchmark.extra_info["ns_per_op_c_clock_median"] = round(c_clock_ns, 2)
        _ROWS.setdefault(benchmark.group, {})[impl] = (ns, unit, c_clock_ns)


@pytest.fixture
def per_op():
    return _PerOp()


def pytest_terminal_summary(terminalreporter):
    if not _ROWS:
        return
    tr = terminalreporter
    tr.section("median ns per op")
    tr.write_line("cy_c: the C loop's own CLOCK_MONOTONIC reading; [in brackets] the whole loop call timed by "
                  "pytest-benchmark / ops, which also counts the loop's untimed setup (ack windows, fresh logs)")
    head = f"{'group':36} {'unit':6} {'cy_py':>9} {'cy_c':>18} {'plain':>9} {'plain_col':>9} {'plain/cy_py':>11}"
    tr.write_line(head)
    tr.write_line("-" * len(head))
    for group in sorted(_ROWS):
        row = _ROWS[group]
        unit = next(iter(row.values()))[1]

        def cell(impl, width=9):
            if impl not in row:
                return f"{'-':>{width}}"
            ns, _, c_ns = row[impl]
            if c_ns is not None:
                return f"{c_ns:8.2f} [{ns:7.2f}]".rjust(width)
            return f"{ns:{width}.2f}"

        ratio = ""
        if "cy_py" in row and "plain" in row:
            ratio = f"{row['plain'][0] / row['cy_py'][0]:10.1f}x"
        other = "  ".join(f"{impl}={row[impl][0]:.2f}" for impl in row if impl not in _COLUMNS)
        tr.write_line(f"{group:36} {unit:6} {cell('cy_py')} {cell('cy_c', 18)} {cell('plain')} "
                      f"{cell('plain_columnar')} {ratio:>11}  {other}".rstrip())
