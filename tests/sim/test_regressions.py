"""Seeds that found engine bugs, kept as regression tests.

A seed replays the same run only while the simulator's random draws and the engine's behaviour
stay the same; after a change it still runs a full random schedule, just not the same one (the
targeted scenarios in test_sim.py pin the same bugs down deterministically). Each entry names
what the seed found; replay with `python -m openraft_fast.testing.sim --seed S --steps N --mode M`.
"""
import pytest

from openraft_fast.testing.sim import run_seed

# (seed, steps, mode, what the seed found)
REGRESSIONS = [
    # Fixed in the engine build of 05:10 (startup stands for election instead of restoring).
    (2, 1031, "adv", "a restarted leader restored its old leader id and appended a blank entry with the "
                     "log id of an entry it had sent but not flushed before the crash (two entries with "
                     "one log id: log matching broken)"),
    (7, 1886, "adv", "the same"),
    (2, 3231, "std", "the same, std mode"),
    # Fixed in the engine build of 05:10 (committed clamped to what is flushed).
    (25, 4317, "std", "Engine() refused to start: SaveCommitted had been saved past the durable log "
                      "(a follower committed entries it had not flushed)"),
    # Fixed (leases bind candidates and restarted nodes; candidates go above every term seen;
    # voters of the committed config stay electable; snapshot install before the log reset).
    (2288, 16992, "adv", "stale lease read: elect() on followers that backed the leader's lease elected "
                         "a new leader while the old one still served LEASE_READ"),
    (2233, 3557, "adv", "pre-vote livelock: pre-vote rejections carry an uncommitted higher vote that the "
                        "candidate never adopts, so the nodes with the longest logs ask for the same term "
                        "forever"),
    (1332, 11673, "std", "the same pre-vote livelock, std mode"),
    (1560, 20000, "std", "std-mode livelock without pre-vote: a voter that refuses a candidate for its log "
                         "does not adopt the candidate's higher term"),
    (1577, 875, "adv", "membership deadlock: the uniform config of a replace-all (retain=True) reached "
                       "only the old voters before the leader crashed; they think they are learners, the "
                       "new voters need their votes: no leader ever"),
    (1279, 8065, "std", "the same membership deadlock, std mode"),
    (2173, 18150, "std", "a node crashed between InstallSnapshot and PurgeLog; after the restart its log "
                         "ends before its snapshot, it acks the snapshot it 'already holds' and rejects "
                         "every append: replication to it stalls for good"),
    # Fixed: a leader that sent TimeoutNow no longer serves lease reads (the target's election
    # ignores leases, so no earlier ack proves there is no newer leader).
    (314, 13485, "std", "stale lease read: a transfer timed out on the old leader after its target had "
                        "already won; the old leader's lease, from acks sent before the TimeoutNow, "
                        "looked valid"),
    # Checker fixed (#8): leader completeness is about entries committed in LOWER terms only.
    # A grant delayed ~95 ms elected T54-N7 after its voter had helped T55-N1 commit the T53
    # entry 548; the old invariant demanded that entry of the T54 leader. (The engine's late-
    # grant lease bug, fixed with it, let such a leader serve LEASE_READ from grants.)
    (50126, 11742, "adv", "false leader-completeness alarm on a leader elected by a late grant"),
]


@pytest.mark.parametrize("seed,steps,mode,what", REGRESSIONS,
                         ids=[f"{m}-seed{s}-{n}" for s, n, m, _ in REGRESSIONS])
def test_regression_seed(seed, steps, mode, what):
    r = run_seed(seed, steps, mode, trace_lines=60)
    assert r.ok, f"regression ({what}):\n{r.error}\n{r.trace}\nreplay: {r.minimal_replay}"


# (seed, steps, mode, profile, what the seed found)
PROFILE_REGRESSIONS = [
    # Fixed: a voter answers "not a member" only when its log holds at least the requester's.
    (533, 5000, "adv", "harsh", "no leader ever: the joint config {8,9,10}+{1,2,9,10} needed a vote from node 1 "
                                "or 10, whose logs predated the membership that added node 9; they answered "
                                "the only possible candidate (9, longest log) not_member"),
    # Fixed in the checker: a leader committed under a uniform config it had just appended (its
    # C_new quorum held the entry; safe), then died in the same call before that entry was
    # durable; restarted with the joint config only, it was judged by that one. The commit
    # rule is now checked before such a crash (Checker.before_crash), and only on leaders.
    (1169, 5000, "std", "harsh", "false commit-rule failure: a commit decided under a membership lost in "
                                 "a crash mid-batch was judged by the restarted node's older one"),
]


@pytest.mark.parametrize("seed,steps,mode,profile,what", PROFILE_REGRESSIONS,
                         ids=[f"{m}-{p}-seed{s}-{n}" for s, n, m, p, _ in PROFILE_REGRESSIONS])
def test_regression_profile_seed(seed, steps, mode, profile, what):
    r = run_seed(seed, steps, mode, trace_lines=60, params={"profile": profile})
    assert r.ok, f"regression ({what}):\n{r.error}\n{r.trace}\nreplay: {r.minimal_replay}"
