"""A single-voter node on open_storage killed with SIGKILL while it writes, restarted on the
same directory: its state machine (snapshot plus replayed log) holds every acknowledged write,
and nothing that was never written. NODE_CRASH_ITERS=N runs more kills (default 6)."""
import json
import os
import random

from sigkill import run_and_kill

ITERS = int(os.environ.get("NODE_CRASH_ITERS", "6"))
SEED = int(os.environ.get("NODE_CRASH_SEED", "1"))
NODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "raft_crash_node.py")


def _run_node(path: str, first: int, kill_after: float):
    """Start the node; SIGKILL it `kill_after` s after it reported its state; (state, acked,
    index of the snapshot it restarted from)."""
    lines = run_and_kill(NODE, [path, first], b"D ", kill_after, "node")
    state = {k: v for k, v in json.loads(next(x for x in lines if x.startswith("D "))[2:])}
    acked = [int(x[2:]) for x in lines if x.startswith("A ")]
    snapshot = int(next(x for x in lines if x.startswith("S "))[2:])
    return state, acked, snapshot


def test_sigkill_a_node_and_restart_it_loses_no_acknowledged_write(tmp_path):
    rng = random.Random(SEED)
    path = str(tmp_path / "node")
    acked: set = set()
    in_flight: set = set()      # the write under way at each kill: it may or may not be there
    first = 0
    snapshots = 0
    for it in range(ITERS + 1):
        hint = f"iteration {it}; replay: NODE_CRASH_SEED={SEED} NODE_CRASH_ITERS={it}"
        state, got, snapshot = _run_node(path, first, rng.uniform(0.05, 0.6) if it < ITERS else 0.0)
        lost = sorted(i for i in acked if state.get(f"k{i}") != i)
        assert not lost, f"acknowledged writes lost after a SIGKILL: {lost[:10]}; {hint}"
        never = sorted(k for k, v in state.items() if v not in acked | in_flight or k != f"k{v}")
        assert not never, f"writes never made (or changed): {never[:10]}; {hint}"
        acked.update(got)
        snapshots += snapshot > 0
        in_flight.add(max(got, default=first - 1) + 1)
        first = max(in_flight) + 1
    assert len(acked) > ITERS, "the node acknowledged almost nothing: the test tested little"
    assert snapshots, "no restart went through a snapshot: the test tested little"
