"""Chaos for the control plane (control_run): transactions, watch, leases and locks on real
`serve` processes under the chaos nemesis. CI runs one bounded seed on three nodes; longer:
CHAOS_SECONDS=300 CHAOS_SEEDS=5 (seeds 1..5) or CHAOS_SEEDS=7,42."""
import asyncio
import copy

import pytest

from chaos_run import RESULTS
from control_run import ACCOUNTS, ControlRun
from openraft_fast.testing import lincheck_txn
from test_chaos import SECONDS, _seeds


@pytest.mark.parametrize("seed", _seeds())
def test_control_plane_under_chaos(seed):
    run = ControlRun(3, seed, SECONDS)
    result = asyncio.run(asyncio.wait_for(run.run(), SECONDS + 240.0))
    RESULTS.append(result)
    print(result.line(), result.ops)
    assert result.ok, ("\n".join(result.problems) + f"\nkept: {result.run_dir}\nreplay: {result.replay}")
    # It did something: transfers went through and were watched, leases expired, locks were held,
    # and the nemesis struck.
    ops = result.ops
    assert ops["transfers"] > 0 and ops["watched"] > ops["transfers"] and ops["leases"] > 0 and ops["locks"] > 0, ops
    assert sum(result.faults.values()) > 0 and result.final_term > 1
    # ...and the checks would have caught a watch that skipped a change or a torn transfer.
    final = {}
    for _, kind, key, value in run.watched:
        final[key] = value if kind == "put" else None
    skipped = run.watched[len(run.watched) // 2]
    run.watched.remove(skipped)
    assert run._watch_problems(final)
    run.watched.insert(len(run.watched) // 2, skipped)
    done = next(t for t in run.txns if t.response is not None and t.succeeded and len(t.success) == 2)
    a, b = done.success[0][1], done.success[1][1]
    torn = copy.deepcopy(run.txns)
    for t in torn:
        if t.id == done.id:
            t.success = t.success[:1]         # as if only the debit had happened
            t.results = [None]
    assert a in ACCOUNTS and b in ACCOUNTS
    assert not lincheck_txn.check(run.history.operations() + torn, budget=5_000_000).ok
