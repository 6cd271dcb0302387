"""Routine operations must not disturb a healthy cluster: no election, no term change.

Each scenario runs with pre-vote on and the default timeouts, in both leader-id modes, and wraps
the routine operation in a window (`sim.expect_quiet`) that fails on any election or term
change no fault explains (see openraft_fast/testing/sim/elections.py). Failures print the
scenario's mode and the violated window; the random "stability" profile
(test_stability_profile_runs_clean) prints a replay line.
"""
import os

import pytest

from openraft_fast._core.engine import LEADER, NOT_MEMBER
from openraft_fast._core.messages import VoteRequest
from openraft_fast._core.types import LeaderId, Vote
from openraft_fast.testing.sim import Simulation, SimViolation, run_seed

from tests.sim.test_sim import MODES, change_membership, committed_writes

ET_MAX = 0.3            # Config.election_timeout_max by default
LONG = 20 * ET_MAX      # "many election timeouts"


def stable_sim(mode, voters, seed=1, spares=0):
    """No random load or faults, pre-vote on, default timeouts; returns (sim, leader) once the
    leader committed its blank entry and every node applied it."""
    sim = Simulation(seed, mode, faults=False, workload=False,
                     params={"voters": voters, "learners": 0, "spares": spares},
                     config={"enable_pre_vote": True})
    assert sim.config.election_timeout_max == ET_MAX and sim.config.enable_pre_vote
    leader = sim.wait_leader()
    committed_writes(sim, leader, 3)
    sim.run_for(2 * ET_MAX)
    return sim, leader


def followers(sim, leader):
    return [n for n in sorted(sim.nodes) if n != leader.id]


def terms(sim, ids):
    return {i: sim.nodes[i].engine.vote.leader_id.term for i in ids}


def still_leads(sim, leader, lid):
    assert leader.engine.state == LEADER and leader.engine.vote.leader_id == lid, (
        f"node {leader.id} no longer leads as {lid}\n{sim.cluster_state()}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("voters", [3, 5])
def test_follower_restart_storm(mode, voters):
    """Followers crash and restart from durable state one after another (short and long
    downtimes, writes in between), then two at once when a quorum remains: the leader stays,
    nobody stands, no term moves."""
    sim, leader = stable_sim(mode, voters)
    lid = leader.engine.vote.leader_id
    with sim.expect_quiet("follower restart storm", faults=("crash", "restart")):
        for down in (0.0, 0.05, ET_MAX, 3 * ET_MAX):
            for f in followers(sim, leader):
                sim.crash(f)
                committed_writes(sim, leader, 2)
                sim.run_for(down)
                sim.restart(f)
                sim.run_for(ET_MAX / 3)
        if voters >= 5:
            fs = followers(sim, leader)
            for pair in (fs[:2], fs[2:], fs[1:3]):
                for f in pair:
                    sim.crash(f)
                committed_writes(sim, leader, 2)
                sim.run_for(2 * ET_MAX)
                for f in pair:
                    sim.restart(f)
                sim.run_for(0.01)
        committed_writes(sim, leader, 2)
        sim.run_for(LONG)
        still_leads(sim, leader, lid)
        sim.wait_applied_everywhere(leader.engine.committed.index, sim.nodes)
    sim.heal_all()
    sim.check_liveness()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("partitioned", [None, "short", "long"])
def test_removed_node_left_running(mode, partitioned):
    """A voter removed by change_membership keeps running: while reachable, or partitioned
    first and healed before (short) or after (long) the leader stops replicating to it. The
    cluster's terms never change and the node ends NOT_MEMBER."""
    sim, leader = stable_sim(mode, 4)
    lid = leader.engine.vote.leader_id
    victim = followers(sim, leader)[-1]
    rest = frozenset(n for n in sim.nodes if n != victim)
    before = terms(sim, sim.nodes)
    with sim.expect_quiet(f"removed node {victim} left running ({partitioned or 'reachable'})",
                          faults=("remove", "cut", "heal")):
        if partitioned:
            sim.network.isolate(victim, list(sim.nodes))
            sim.run_for(ET_MAX)
        sim.elections.note_fault("remove", victim)
        change_membership(sim, rest)
        committed_writes(sim, leader, 3)
        if partitioned:
            # The leader keeps replicating to a leaving node for 10 x election_timeout_max.
            sim.run_for(ET_MAX if partitioned == "short" else 12 * ET_MAX)
            sim.network.heal()
        sim.run_for(LONG)
        committed_writes(sim, leader, 2)
        still_leads(sim, leader, lid)
        v = sim.nodes[victim].engine
        assert v.state == NOT_MEMBER, f"removed node {victim} is {v.state_name}\n{sim.cluster_state()}"
        assert terms(sim, sim.nodes) == before
        assert victim not in leader.engine.membership.node_ids()


@pytest.mark.parametrize("mode", MODES)
def test_isolated_follower_healed(mode):
    """A follower cut off for many election timeouts (it pre-votes, nobody answers), then
    healed: it rejoins without an election."""
    sim, leader = stable_sim(mode, 5)
    lid = leader.engine.vote.leader_id
    f = followers(sim, leader)[1]
    with sim.expect_quiet("isolated follower healed", faults=("cut", "heal")):
        sim.network.isolate(f, list(sim.nodes))
        committed_writes(sim, leader, 3)
        sim.run_for(LONG)
        assert sim.stats["election.pre_vote_sent"] > 0
        assert sim.nodes[f].engine.leader_id is None      # it gave up on its leader
        sim.network.heal()
        sim.run_for(LONG)
        committed_writes(sim, leader, 2)
        still_leads(sim, leader, lid)
        sim.wait_applied_everywhere(leader.engine.committed.index, sim.nodes)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("voters", [3, 5])
def test_isolated_leader_healed(mode, voters):
    """The leader is cut off: it steps down by check-quorum without changing its term, the
    rest elect ONE new leader; healed, the old leader follows it with no further election."""
    sim, old = stable_sim(mode, voters)
    old_term = old.engine.vote.leader_id.term
    with sim.expect_quiet("isolated leader: one new leader", allow=1, faults=("cut",)) as w:
        sim.network.isolate(old.id, list(sim.nodes))
        sim.run_until(lambda: old.engine.state != LEADER, 2 * ET_MAX, "the old leader stepping down")
        new = sim.wait_leader(exclude={old.id})
        committed_writes(sim, new, 3)
        sim.run_for(LONG)
        assert old.engine.vote.leader_id.term == old_term, "the isolated old leader changed its term"
        assert len(w.elections()) == 1
    new_lid = new.engine.vote.leader_id
    with sim.expect_quiet("isolated leader healed", faults=("heal",)):
        sim.network.heal()
        sim.run_for(LONG)
        committed_writes(sim, new, 2)
        still_leads(sim, new, new_lid)
    assert old.engine.vote.leader_id == new_lid


def quiet_then_healed(sim, what):
    """After a fault's first election (if any): no other one while it lasts, nor once healed;
    the leader keeps committing."""
    cur = sim.wait_leader()
    with sim.expect_quiet(f"{what}, after its first election", faults=()):
        sim.run_for(LONG)
        committed_writes(sim, cur, 2)
    with sim.expect_quiet(f"{what} healed", faults=("heal",)):
        sim.network.heal()
        sim.run_for(LONG)
        committed_writes(sim, cur, 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("leader_is_bridge", [True, False])
def test_bridge(mode, leader_is_bridge):
    """Three voters, A sees B and C, B and C cannot see each other: at most one election,
    then none for many election timeouts; healed, none either."""
    sim, leader = stable_sim(mode, 3)
    fs = followers(sim, leader)
    a, b, c = (leader.id, *fs) if leader_is_bridge else (fs[0], leader.id, fs[1])
    with sim.expect_quiet(f"bridge {a} between {b} and {c}", allow=1, faults=("cut",)):
        sim.network.cut_link(b, c)
        sim.network.cut_link(c, b)
        sim.run_for(LONG)
    quiet_then_healed(sim, "bridge")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("direction", ["to_follower", "from_follower"])
def test_one_way_cut(mode, direction):
    """One direction of the link between the leader and a follower loses everything: at most
    one election, then none for many election timeouts; healed, none either."""
    sim, leader = stable_sim(mode, 3)
    f = followers(sim, leader)[0]
    src, dst = (leader.id, f) if direction == "to_follower" else (f, leader.id)
    with sim.expect_quiet(f"one-way cut {src}->{dst}", allow=1, faults=("cut",)):
        sim.network.cut_link(src, dst)
        sim.run_for(LONG)
    quiet_then_healed(sim, "one-way cut")


# -- the election log itself ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_quiet_window_catches_an_election(mode):
    """A forced election inside a window fails it; a fault it does not allow fails it too."""
    sim, leader = stable_sim(mode, 3)
    w = sim.expect_quiet("forced election", faults=("crash", "restart"))
    sim.crash(leader.id)
    with pytest.raises(SimViolation, match="unexplained election: forced election.*leader_crash"):
        w.check()
    new = sim.wait_leader(exclude={leader.id})
    assert len(w.elections()) >= 1 and w.term_rise() >= 1
    w2 = sim.expect_quiet("a stray vote request", allow=0)
    f = next(i for i in followers(sim, new) if not sim.nodes[i].crashed)
    t = new.engine.vote.leader_id.term + 5
    f_node = sim.nodes[f]
    # A vote request with a higher term and a long log, from a member, after the lease.
    sim.run_for(ET_MAX)
    sim.network.isolate(new.id, list(sim.nodes))
    sim.run_for(ET_MAX)
    req = VoteRequest(Vote(LeaderId(t, new.id, std=mode == "std")), f_node.engine.last_log_id, False, True)
    sim.call(f_node, "VoteRequest", f_node.engine.recv_vote, new.id, req)
    with pytest.raises(SimViolation, match="a stray vote request"):
        w2.check()
# -- the random "stability" profile --------------------------------------------------------------

SEEDS = int(os.environ.get("SIM_SEEDS", "80")) // 20 or 1
STEPS = int(os.environ.get("SIM_STEPS", "15000")) // 3


@pytest.mark.parametrize("mode", MODES)
def test_stability_profile_runs_clean(mode):
    """Random seeds of the "stability" profile: routine operations only (restart storms,
    removed nodes left running, bridges, one-way cuts, healing) under load; the safety
    invariants, liveness, and (pre-vote on) no election no fault explains. Sweeps by CLI."""
    for seed in range(SEEDS):
        r = run_seed(seed, STEPS, mode, trace_lines=60, params={"profile": "stability"})
        assert r.ok, f"{r.error}\n{r.description}\n{r.trace}\nreplay: {r.minimal_replay}"
        assert "--profile stability" in r.replay
        assert sum(v for k, v in r.stats.items() if k.startswith("stability.phase.")) >= 1


@pytest.mark.parametrize("mode", MODES)
def test_stability_profile_checks_windows(mode):
    """With pre-vote on, a phase that sees an election it does not allow fails the run."""
    sim = Simulation(0, mode, params={"profile": "stability"}, config={"enable_pre_vote": True})
    assert sim.workload.routine is not None and sim.workload.routine.check_quiet
    assert sim.batch_crash == 0.0 and sim.network.faults.drop <= 0.01
    sim.run(300)
    r = sim.workload.routine
    sim.run_until(lambda: r.window is not None, 5.0, "a stability phase")
    leader = sim.leader()
    sim.crash(leader.id)                     # not a routine operation: the window fails
    with pytest.raises(SimViolation, match="unexplained election: stability phase"):
        sim.run(20000)
