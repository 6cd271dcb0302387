"""The "stability" profile's faults: routine operations, one phase at a time.

Each phase starts on a settled cluster (a ready leader, nothing crashed, no cut link, no
membership change running), does one routine operation, heals, lets the cluster settle for a
few election timeouts and checks the phase's quiet window (see elections.py):

- restart_one / restart_storm: followers crash and restart from durable state, one after
  another and (when a quorum stays up with the leader) two at once: no election allowed;
- remove / remove_partitioned: a follower voter is removed by change_membership and left
  running (partitioned first in the second case, healed before or after the leader stops
  replicating to it): no election allowed, and the node ends NOT_MEMBER;
- add_back: a node outside the membership (removed earlier, or a spare) is added back as a
  learner, then a voter: no election allowed;
- isolate_follower: a follower is cut off for up to 20 election timeouts, then healed: no
  election allowed;
- bridge (the two directions of one link between voters cut: both ends still see the rest)
  and one_way (one direction of a link cut): at most one election in the whole phase.

The windows are checked when pre-vote is on (what keeps a cut-off node from raising terms);
without it they are only counted (stats "stability.*").
"""
from openraft_fast._core.engine import NOT_MEMBER

from openraft_fast.testing.sim.checker import SimViolation

OPS = ("restart_one", "restart_storm", "remove", "remove_partitioned", "add_back", "isolate_follower",
       "bridge", "one_way")
ALLOW = {"bridge": 1, "one_way": 1}
FAULTS = {
    "restart_one": ("crash", "restart", "heal"),
    "restart_storm": ("crash", "restart", "heal"),
    "remove": ("remove", "heal"),
    "remove_partitioned": ("remove", "cut", "heal"),
    "add_back": ("heal",),
    "isolate_follower": ("cut", "heal"),
    "bridge": ("cut", "heal"),
    "one_way": ("cut", "heal"),
}


class RoutineFaults:
    def __init__(self, workload):
        self.w = workload
        self.sim = workload.sim
        self.rng = workload.rng
        self.et = self.sim.config.election_timeout_max
        self.check_quiet = self.sim.config.enable_pre_vote
        self.op = None
        self.window = None
        self.victim = None
        self.phase_start = 0.0
        self.change_outcome = None

    def start(self):
        self.sim.schedule(self.w.quiet_until, "action", self._begin)

    def _later(self, delay, fn, *args):
        self.sim.schedule(delay, "action", fn, *args)

    # -- phases --
    def _settled(self):
        sim = self.sim
        leader = sim.leader()
        return (leader is not None and sim.leader_ready(leader) and not sim.network.cut
                and self.w.change is None and not any(n.crashed for n in sim.nodes.values())), leader

    def _begin(self):
        if self.w.stopped:
            return False
        sim = self.sim
        ok, leader = self._settled()
        if not ok:
            sim.stats["stability.wait"] += 1
            self._later(0.1, self._begin)
            return True
        rng = self.rng
        op = rng.choice(OPS)
        m = leader.engine.membership
        voters = sorted(m.voter_ids)
        outside = [n for n in sorted(sim.nodes) if n not in m.node_ids()]
        if op.startswith("remove") and len(voters) <= 3:
            op = "add_back" if outside else "restart_one"
        if op == "add_back" and (not outside or len(voters) >= 5):
            op = "restart_storm"
        self.op = op
        self.victim = None
        self.change_outcome = None
        self.phase_start = sim.now
        sim.stats[f"stability.phase.{op}"] += 1
        self.window = sim.expect_quiet(f"stability phase {op}", allow=ALLOW.get(op, 0), faults=FAULTS[op])
        getattr(self, "_op_" + op)(leader, voters, outside)
        return True

    def _end(self):
        """The operation's time is up: wait for a membership change to finish, heal, restart."""
        if self.w.stopped:
            return False
        sim = self.sim
        if self.w.change is not None and sim.now - self.phase_start < 10.0:
            self._later(0.1, self._end)
            return True
        if sim.network.cut:
            sim.network.heal()
        for nid in sorted(sim.nodes):
            sim.restart(nid)
        self._later(self.rng.uniform(3, 6) * self.et, self._close)
        return True

    def _close(self):
        if self.w.stopped:
            return False
        sim = self.sim
        w = self.window
        n = len(w.elections())
        sim.stats["stability.elections"] += n
        if w.problems():
            sim.stats[f"stability.unquiet.{self.op}"] += 1
            if self.check_quiet:
                w.check()
        if self.op.startswith("remove") and self.change_outcome == "done":
            v = sim.nodes[self.victim]
            leader = sim.leader()
            if leader is not None and self.victim not in leader.engine.membership.node_ids():
                sim.stats["stability.removed"] += 1
                if v.engine.state != NOT_MEMBER:
                    sim.stats["stability.removed_not_not_member"] += 1
                    if self.check_quiet:
                        raise SimViolation(f"node {self.victim}, removed in phase {self.op} and left running, "
                                           f"is {v.engine.state_name}, not not_member\n{sim.cluster_state()}")
        self.window = None
        self._later(self.rng.uniform(0.05, 0.5), self._begin)
        return True

    def on_change_end(self, outcome):
        self.change_outcome = outcome

    # -- helpers --
    def _followers(self, leader):
        return [n for n in sorted(self.sim.nodes) if n != leader.id and not self.sim.nodes[n].crashed]

    def _quorum_stays(self, leader, down):
        """Whether the leader's voters minus `down` (and anything crashed) still form a quorum."""
        sim = self.sim
        up = [v for v in leader.engine.membership.voter_ids if v not in down and not sim.nodes[v].crashed]
        return leader.engine.quorum.is_quorum(up)

    def _crash(self, nid):
        if self.w.stopped:
            return False
        sim = self.sim
        leader = sim.leader()
        if sim.nodes[nid].crashed or leader is None or leader.id == nid or not self._quorum_stays(leader, {nid}):
            sim.stats["stability.crash_skipped"] += 1
            return True
        sim.crash(nid)
        return True

    def _restart(self, nid):
        if self.w.stopped:
            return False
        self.sim.restart(nid)
        return True

    def _heal(self):
        if self.w.stopped:
            return False
        self.sim.network.heal()
        return True

    # -- operations --
    def _op_restart_one(self, leader, voters, outside):
        rng = self.rng
        f = rng.choice(self._followers(leader))
        down = rng.choice((0.0, rng.uniform(0.0, self.et), rng.uniform(self.et, 4 * self.et)))
        self._crash(f)
        self._later(down, self._restart, f)
        self._later(down + 0.001, self._end)

    def _op_restart_storm(self, leader, voters, outside):
        rng = self.rng
        fs = self._followers(leader)
        rng.shuffle(fs)
        t = 0.0
        for f in fs:
            down = rng.uniform(0.0, 2 * self.et)
            self._later(t, self._crash, f)
            self._later(t + down, self._restart, f)
            t += down + rng.uniform(0.0, self.et)
        voter_fs = [f for f in fs if f in voters]
        if len(voter_fs) >= 2 and self._quorum_stays(leader, set(voter_fs[:2])):
            # Two at once (the quorum check runs again at each crash).
            down = rng.uniform(0.0, 2 * self.et)
            for f in voter_fs[:2]:
                self._later(t, self._crash, f)
                self._later(t + down, self._restart, f)
            t += down
        self._later(t + 0.001, self._end)

    def _remove(self, leader, voters, victim):
        self.victim = victim
        self.sim.elections.note_fault("remove", victim)
        self.w.start_change_to(leader, [v for v in voters if v != victim], "stability_remove")

    def _op_remove(self, leader, voters, outside):
        victim = self.rng.choice([v for v in voters if v != leader.id])
        self._remove(leader, voters, victim)
        self._later(self.rng.uniform(0.5, 2.0), self._end)

    def _op_remove_partitioned(self, leader, voters, outside):
        sim = self.sim
        victim = self.rng.choice([v for v in voters if v != leader.id])
        sim.network.isolate(victim, sorted(sim.nodes))
        # The leader replicates to a leaving node for 10 x election_timeout_max: heal before or after.
        heal_at = self.rng.uniform(0.5, 15 * self.et)
        self._later(self.rng.uniform(0.0, self.et), self._remove_later, victim)
        self._later(heal_at, self._heal)
        self._later(heal_at + 0.001, self._end)

    def _remove_later(self, victim):
        if self.w.stopped:
            return False
        leader = self.sim.leader()
        if leader is None or victim not in leader.engine.membership.voter_ids or self.w.change is not None:
            self.sim.stats["stability.remove_skipped"] += 1
            return True
        self._remove(leader, sorted(leader.engine.membership.voter_ids), victim)
        return True

    def _op_add_back(self, leader, voters, outside):
        n = self.rng.choice(outside)
        self.w.start_change_to(leader, voters + [n], "stability_add")
        self._later(self.rng.uniform(0.5, 2.0), self._end)

    def _op_isolate_follower(self, leader, voters, outside):
        sim = self.sim
        f = self.rng.choice(self._followers(leader))
        sim.network.isolate(f, sorted(sim.nodes))
        self._later(self.rng.uniform(1, 20) * self.et, self._end)

    def _op_bridge(self, leader, voters, outside):
        b, c = self.rng.sample(voters, 2)
        net = self.sim.network
        net.cut_link(b, c)
        net.cut_link(c, b)
        self._later(self.rng.uniform(2, 20) * self.et, self._end)

    def _op_one_way(self, leader, voters, outside):
        rng = self.rng
        ids = sorted(self.sim.nodes)
        if rng.random() < 0.6:
            f = rng.choice(self._followers(leader))
            src, dst = (leader.id, f) if rng.random() < 0.5 else (f, leader.id)
        else:
            src, dst = rng.sample(ids, 2)
        self.sim.network.cut_link(src, dst)
        self._later(rng.uniform(2, 20) * self.et, self._end)

