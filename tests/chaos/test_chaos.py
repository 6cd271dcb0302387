"""Chaos: 3- and 5-node clusters of real `serve` processes under kills, pauses, partitions,
one-way cuts, resets, delays and membership changes; every history must be linearizable and
the healed cluster must converge with no acknowledged write lost.

CI runs one bounded seed per cluster size (about two minutes in all). Longer runs:
CHAOS_SECONDS=300 CHAOS_SEEDS=5 (five seeds 1..5) or CHAOS_SEEDS=7,42 (those seeds).
"""
import asyncio
import os

import pytest

from chaos_run import RESULTS, chaos

SECONDS = float(os.environ.get("CHAOS_SECONDS", "25"))
LEASE = os.environ.get("CHAOS_LEASE") == "1"      # also 30% of reads at consistency=lease


def _seeds():
    text = os.environ.get("CHAOS_SEEDS", "1")
    if "," in text:
        return [int(x) for x in text.split(",") if x.strip()]
    return list(range(1, int(text) + 1))


def _run(nodes, seed):
    # bounded: the run, healing, convergence and checks all fit well inside this
    limit = SECONDS + 180.0
    result = asyncio.run(asyncio.wait_for(chaos(nodes, seed, SECONDS, workers_per_node=3 if nodes == 3 else 2,
                                                lease_reads=LEASE),
                                          limit))
    RESULTS.append(result)
    print(result.line())
    assert result.ok, ("\n".join(result.problems) + f"\nkept: {result.run_dir}\nreplay: {result.replay}")
    assert result.ops["ok"] > 0 and sum(result.faults.values()) > 0


@pytest.mark.parametrize("seed", _seeds())
def test_chaos_nodes3(seed):
    _run(3, seed)


@pytest.mark.parametrize("seed", _seeds())
def test_chaos_nodes5(seed):
    _run(5, seed)
