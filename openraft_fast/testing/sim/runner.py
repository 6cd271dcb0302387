"""One seeded run: random load and faults for `steps` steps, then heal and check liveness."""
import time
import traceback

from openraft_fast.testing.sim.checker import SimViolation
from openraft_fast.testing.sim.core import Simulation, replay_command


class RunResult:
    __slots__ = ("seed", "mode", "steps", "params", "ok", "error", "failed_step", "sim_time", "wall",
                 "stats", "trace", "description")

    def __init__(self, seed, mode, steps, params=None):
        self.seed = seed
        self.mode = mode
        self.steps = steps
        self.params = params
        self.ok = True
        self.error = None
        self.failed_step = None
        self.sim_time = 0.0
        self.wall = 0.0
        self.stats = {}
        self.trace = ""
        self.description = ""

    @property
    def replay(self):
        return replay_command(self.seed, self.steps, self.mode, self.params)

    @property
    def minimal_replay(self):
        """Safety violations show up within the first failed_step steps of the same seed."""
        if self.failed_step is not None and self.failed_step < self.steps:
            return replay_command(self.seed, self.failed_step + 1, self.mode, self.params)
        return self.replay


def run_seed(seed, steps=3000, mode="adv", liveness=True, trace_lines=0, raise_errors=False, params=None):
    """Run one seed; never raises (unless raise_errors): the result says what happened."""
    res = RunResult(seed, mode, steps, params)
    t0 = time.perf_counter()
    sim = None
    try:
        sim = Simulation(seed, mode, params=params)
        res.description = sim.describe()
        sim.run(steps)
        if liveness:
            sim.heal_all()
            sim.check_liveness()
    except SimViolation as e:
        res.ok = False
        res.error = str(e)
        if sim is not None:
            res.failed_step = sim.steps
            res.error += f"\n(at step {sim.steps}, t={sim.now:.5f})"
        if raise_errors:
            raise
    except Exception as e:     # a bug in the simulator or an engine crash outside a call
        res.ok = False
        res.error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        if sim is not None:
            res.failed_step = sim.steps
        if raise_errors:
            raise
    finally:
        res.wall = time.perf_counter() - t0
        if sim is not None:
            res.sim_time = sim.now
            res.stats = dict(sim.stats)
            if not res.ok and trace_lines:
                res.trace = sim.format_trace(trace_lines) + "\n" + sim.cluster_state()
    return res
