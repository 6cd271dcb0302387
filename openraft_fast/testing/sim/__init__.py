"""Deterministic simulation of openraft_fast engines.

One integer seed drives everything: cluster shape, Config, fault rates, clocks, the network, the
workload and each engine's rng. There is no asyncio and no wall clock: events (message
deliveries, ticks at engine.next_deadline, flush and state-machine completions, client actions,
faults) are processed from a heap in simulated time. After every step the checker verifies
election safety, log matching, leader completeness, state-machine safety, the commit rule (a
leader commits only once an entry of its own term at or after the commit point is durable on a
quorum: Raft 5.4.2, Figure 8), that vote, committed and applied never go backwards (across
restarts, against what was durable), that nothing is acknowledged or granted before it is
durable, that acknowledged writes survive and that linearizable reads see every write committed
before they were issued. A run ends by healing all faults and checking liveness: a leader
emerges and every write commits everywhere.

    python -m openraft_fast.testing.sim --seeds 200 --mode both --jobs 2
    python -m openraft_fast.testing.sim --seed 123 --steps 3000 --mode std --trace 200

Modules: core (Simulation: nodes, events, command execution, crash/restart, liveness),
storage (durable/volatile log, state machine, snapshot), network (delays, drops, duplicates,
partitions), workload (client load, membership changes, faults, client-side checks),
checker (invariants), elections (elections and term changes no fault explains: quiet windows,
Simulation.expect_quiet), routine (the "stability" profile's routine operations), runner and cli.

    python -m openraft_fast.testing.sim --profile stability --seeds 200 --steps 5000 --mode both
"""
from openraft_fast.testing.sim.checker import SimViolation
from openraft_fast.testing.sim.core import Simulation, replay_command
from openraft_fast.testing.sim.runner import RunResult, run_seed

__all__ = ["Simulation", "SimViolation", "RunResult", "run_seed", "replay_command"]
