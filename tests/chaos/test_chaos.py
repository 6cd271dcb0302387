"""Chaos: 3- and 5-node clusters of real `serve` processes under kills, pauses, partitions,
one-way cuts, resets, delays and membership changes; every history must be linearizable and
the healed cluster must converge with no acknowledged write lost.

CI runs one bounded seed per cluster size (about two minutes in all). Longer runs:
CHAOS_SECONDS=300 CHAOS_SEEDS=5 (five seeds 1..5) or CHAOS_SEEDS=7,42 (those seeds).
"""
import asyncio
import copy
import os

import pytest

from chaos_run import RESULTS, chaos
from openraft_fast.testing.lincheck import check

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
    # the run did something: writes went through, faults happened, elections followed them,
    # and the proxies cut traffic when asked (a proxy that drops nothing tests nothing)
    assert result.ops["ok"] > 0 and sum(result.faults.values()) > 0
    assert result.final_term > 1
    if {"partition", "one_way"} & set(result.faults):
        assert result.bytes_dropped > 0
    # and the checker would have seen a lost write in this very history
    stale = _with_a_stale_final_read(result.history)
    assert stale is not None and check(stale).violation


def _with_a_stale_final_read(ops):
    """A copy of the history where one final read returns a value overwritten before it: some
    acknowledged write p, then an acknowledged write w of the key invoked after p returned and
    returned before the read began."""
    ops = copy.deepcopy(ops)
    finals = [o for o in ops if o.client == -1 and o.kind == "get" and o.response is not None]
    for read in finals:
        writes = sorted((o for o in ops if o.key == read.key and o.response is not None and o.response < read.invoke
                         and (o.kind == "put" or (o.kind == "cas" and o.ok))), key=lambda o: o.invoke)
        for p in writes:
            if p.value != read.output and any(w.invoke > p.response and w is not p for w in writes):
                read.output = p.value
                return ops
    return None


@pytest.mark.parametrize("seed", _seeds())
def test_chaos_nodes3(seed):
    _run(3, seed)


@pytest.mark.parametrize("seed", _seeds())
def test_chaos_nodes5(seed):
    _run(5, seed)
