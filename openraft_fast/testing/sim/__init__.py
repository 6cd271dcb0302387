"""Deterministic simulation of openraft_fast engines (see core.Simulation and cli).

    python -m openraft_fast.testing.sim --seeds 100 --mode both --jobs 2
    python -m openraft_fast.testing.sim --seed 123 --steps 3000 --mode std --trace 200
"""
from openraft_fast.testing.sim.checker import SimViolation
from openraft_fast.testing.sim.core import Simulation, replay_command
from openraft_fast.testing.sim.runner import RunResult, run_seed

__all__ = ["Simulation", "SimViolation", "RunResult", "run_seed", "replay_command"]
