"""Elections and term changes, and windows in which no fault explains one.

Routine operations (a follower restarting, a removed node left running, a partition that kept
a quorum around the leader, then healed) must not disturb a healthy cluster: no node stands,
no term moves. `ElectionLog` watches every node after every call into its engine and records:

- "elect": the node's vote moves to a new leader id naming itself (it stands: a candidacy, or
  the target of a leader transfer);
- "vote": the node's vote moves to another node's leader id (it granted a vote, adopted a
  higher term from a message, or caught up with a leader elected while it was away).

An event is "fresh" when its leader id was never held by any node before: only fresh events
disturb (a node that was cut off catching up with the leader elected meanwhile does not).

Pre-votes change no vote and are only counted (stats "election.pre_vote_sent"). A restarted
node starting from its saved vote is no change. It also records the faults the simulation
injects (crash, restart, network cuts and heals, membership removals), so a window can say
which faults it expects.

A window (`Simulation.expect_quiet(what, allow=0, faults=(...))`) snapshots the log; its
`check()` fails (SimViolation) when more than `allow` elections happened since, when the
highest term rose by more than `allow`, or when a fault of a kind it did not name was
injected (so a scenario cannot pass by doing something else than it says). With allow=0 any
fresh vote change fails it. Everything is deterministic: plain counters, no clock.
"""
from openraft_fast._core.messages import VoteRequest

from openraft_fast.testing.sim.checker import SimViolation

FAULT_KINDS = ("crash", "leader_crash", "restart", "cut", "heal", "remove")


class VoteEvent:
    __slots__ = ("step", "time", "node", "kind", "old", "new", "state", "fresh")

    def __init__(self, step, time, node, kind, old, new, state, fresh):
        self.fresh = fresh
        self.step = step
        self.time = time
        self.node = node
        self.kind = kind
        self.old = old
        self.new = new
        self.state = state

    def __repr__(self):
        return (f"[step {self.step} t={self.time:.4f}] n{self.node} {self.kind}: {self.old} -> {self.new} "
                f"({self.state}{', fresh' if self.fresh else ''})")


class ElectionLog:
    def __init__(self, sim):
        self.sim = sim
        self.events = []            # VoteEvent, in order
        self.faults = []            # (step, time, kind, detail), in order
        self.last = {}              # node id -> the leader id of its vote when last seen
        self.known = set()          # every leader id any node's vote held
        self.max_term = 0
        self.elections = 0          # "elect" events

    # -- observation --
    def observe(self, node):
        """After a call into `node`'s engine (or its start): record a vote change."""
        eng = node.engine
        if eng is None:
            return
        lid = eng.vote.leader_id
        old = self.last.get(node.id)
        if old is None:
            self.last[node.id] = lid
            self.known.add(lid)
            self.max_term = max(self.max_term, lid.term)
            return
        if lid == old:
            return
        self.last[node.id] = lid
        sim = self.sim
        kind = "elect" if lid.node_id == node.id else "vote"
        fresh = lid not in self.known
        if fresh:
            self.known.add(lid)
        self.events.append(VoteEvent(sim.steps, sim.now, node.id, kind, old, lid, eng.state_name, fresh))
        if kind == "elect":
            self.elections += 1
            sim.stats["election.elect"] += 1
        else:
            sim.stats["election.vote_change"] += 1
        if lid.term > self.max_term:
            self.max_term = lid.term

    def on_send(self, msg):
        if type(msg) is VoteRequest and msg.pre_vote:
            self.sim.stats["election.pre_vote_sent"] += 1

    def note_fault(self, kind, detail=None):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        self.faults.append((self.sim.steps, self.sim.now, kind, detail))

    # -- windows --
    def window(self, what, allow=0, faults=None):
        return QuietWindow(self, what, allow, faults)


class QuietWindow:
    """From its creation until check(): at most `allow` elections (0: no vote moves to a new
    leader id at all), the highest term up by at most `allow`, and only faults of the kinds in `faults` (None:
    any). Usable as a context manager (checks on a clean exit)."""

    def __init__(self, log, what, allow=0, faults=None):
        if faults is not None:
            bad = set(faults) - set(FAULT_KINDS)
            if bad:
                raise ValueError(f"unknown fault kinds {sorted(bad)}")
        self.log = log
        self.what = what
        self.allow = allow
        self.allowed_faults = None if faults is None else frozenset(faults)
        self.start_event = len(log.events)
        self.start_fault = len(log.faults)
        self.start_term = log.max_term
        self.start_time = log.sim.now
        self.terms = self.node_terms()

    def node_terms(self):
        """node id -> the term of its vote (crashed nodes: their saved vote)."""
        out = {}
        for nid, n in self.log.sim.nodes.items():
            v = n.engine.vote if n.engine is not None else n.store.vote
            out[nid] = v.leader_id.term if v is not None else 0
        return out

    def events(self):
        return self.log.events[self.start_event:]

    def faults(self):
        return self.log.faults[self.start_fault:]

    def elections(self):
        """The distinct leader ids nodes stood with in this window."""
        seen = []
        for e in self.events():
            if e.kind == "elect" and e.fresh:
                seen.append(e.new)
        return seen

    def term_rise(self):
        return self.log.max_term - self.start_term

    def problems(self):
        out = []
        events = self.events()
        if self.allow == 0:
            fresh = [e for e in events if e.fresh]
            if fresh:
                out.append(f"{len(fresh)} vote change(s) to a new leader id, {len(self.elections())} election(s)")
        else:
            n = len(self.elections())
            if n > self.allow:
                out.append(f"{n} elections, at most {self.allow} allowed")
            if self.term_rise() > self.allow:
                out.append(f"highest term rose by {self.term_rise()}, at most {self.allow} allowed")
        if self.allowed_faults is not None:
            bad = [f for f in self.faults() if f[2] not in self.allowed_faults]
            if bad:
                out.append("faults it does not allow: " + ", ".join(f"{k}({d}) at step {s}" for s, _, k, d in bad))
        return out

    def check(self):
        problems = self.problems()
        if problems:
            sim = self.log.sim
            ev = self.events()
            lines = [f"unexplained election: {self.what} (window from t={self.start_time:.4f}, allow={self.allow}, "
                     f"faults={sorted(self.allowed_faults) if self.allowed_faults is not None else 'any'}): "
                     + "; ".join(problems)]
            lines += [f"  {e!r}" for e in ev[:20]]
            if len(ev) > 20:
                lines.append(f"  ... {len(ev) - 20} more")
            lines.append(sim.cluster_state())
            lines.append("  " + sim.describe())
            raise SimViolation("\n".join(lines))
        return self

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.check()
        return False
