"""Writes whose entry the accepting leader truncates have an unknown outcome (the runtime's
OutcomeUnknown): the simulator never acknowledges them, and still checks that every
acknowledged write is in the committed sequence."""
from openraft_fast.testing.sim import run_seed


def test_truncated_writes_are_indeterminate_and_acked_writes_are_kept():
    unknown = 0
    for seed in range(6):
        r = run_seed(seed, 15000, "adv")
        assert r.ok, f"{r.error}\nreplay: {r.minimal_replay}"
        assert r.stats.get("write.acked", 0) > 0
        unknown += r.stats.get("write.outcome_unknown", 0)
    assert unknown > 0, "no seed truncated an accepted write: the case is not exercised"
