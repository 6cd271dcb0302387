"""Seeded client load and fault injection, plus the client-side checks (acks and reads).

A write is acknowledged when its entry is applied on the leader that accepted it, in the same
incarnation. A write whose entry that leader truncates has an unknown outcome (the runtime's
OutcomeUnknown): it is never acknowledged, and it may or may not commit (at most once). A read confirmed with read log id R is served once the node has applied R; its value
must be what the committed sequence gives at the node's applied index, and R must be at least
every index known committed when the read was issued.
"""
from openraft_fast._core.engine import LEADER, LEASE_READ, READ_INDEX
from openraft_fast._core.types import Node
from openraft_fast.errors import ChangeMembershipError, ForwardToLeader, RaftError

from openraft_fast.testing.sim.checker import SimViolation
from openraft_fast.testing.sim.storage import write_payload

POLICY_NAMES = {READ_INDEX: "read_index", LEASE_READ: "lease_read"}


class Op:
    __slots__ = ("id", "kind", "node", "incarnation", "key", "payload", "log_id", "issued", "acked",
                 "policy", "min_index", "read_log_id", "tag", "via", "answered", "origin")

    def __init__(self, op_id, kind, node, key, issued):
        self.id = op_id
        self.kind = kind
        self.node = node.id
        self.incarnation = node.incarnation
        self.key = key
        self.issued = issued
        self.payload = self.log_id = self.acked = self.policy = self.read_log_id = self.tag = None
        self.via = None                 # a follower read: the leader asked for the read point
        self.origin = None              # a forwarded write: (node id, incarnation) it came from
        self.answered = False
        self.min_index = 0

    def __repr__(self):
        return (f"Op({self.id} {self.kind} n{self.node} key={self.key} log_id={self.log_id} "
                f"read_log_id={self.read_log_id} issued={self.issued:.4f})")


class MembershipChange:
    """add_learner for each new node, then change_membership twice (joint, then uniform); each
    step waits until the previous one is committed on the leader that proposed it."""
    __slots__ = ("goal", "retain", "nodes", "to_add", "leader", "incarnation", "leader_id", "calls",
                 "wait_index", "started", "kind")

    def __init__(self, goal, retain, nodes, to_add, leader, started, kind):
        self.goal = goal
        self.retain = retain
        self.nodes = nodes
        self.to_add = to_add
        self.leader = leader.id
        self.incarnation = leader.incarnation
        self.leader_id = leader.engine.vote.leader_id
        self.calls = 0
        self.wait_index = 0
        self.started = started
        self.kind = kind


class Workload:
    def __init__(self, sim, faults=True, actions=True):
        self.sim = sim
        self.rng = sim.rng
        rng = sim.params_rng
        self.faults_on = faults
        self.actions_on = actions
        self.stopped = False
        self.next_op = 1
        self.stats = sim.stats
        self.keys = [f"k{i}" for i in range(rng.randint(2, 8))]
        self.reads = {}                 # req id -> Op, until the Reply
        self.remote_reads = {}          # req id on a leader -> a follower's read Op, until the Reply
        self.writes = {}                # LogId -> Op, until acknowledged
        self.acked = []
        self.change = None
        # Mean seconds between client actions and between faults.
        self.action_interval = rng.choice((0.004, 0.01, 0.02))
        self.fault_interval = rng.choice((0.2, 0.5, 1.0))
        self.max_crashed = rng.choice((1, 1, 2))
        self.partition_max = 2.0        # longest partition, seconds
        self.quiet_until = 0.5          # no faults while the cluster forms
        # The "stability" profile: routine operations instead of random faults, and no client
        # action that forces an election (elect, transfer_leader) or a random membership change.
        self.routine = None
        # Forwarded writes (the "forward" param): a write sent to a follower goes to the leader
        # it knows. Payloads a leader refused: they must never commit.
        self.forward_rng = None
        self.refused = set()

    def start(self):
        if self.actions_on:
            self.sim.schedule(self.rng.expovariate(1 / self.action_interval), "action", self._action)
        if self.faults_on:
            if self.routine is not None:
                self.routine.start()
            else:
                self.sim.schedule(self.quiet_until, "action", self._fault)

    def stop(self):
        self.stopped = True
        self.change = None

    def new_op(self, kind, node, key=None):
        op = Op(self.next_op, kind, node, key, self.sim.now)
        self.next_op += 1
        return op

    def pending_writes(self):
        return list(self.writes.values())

    # -- client operations --
    def write(self, node, count=1, tag=None):
        """client_write on `node`; returns the first Op, or None if refused."""
        sim = self.sim
        eng = node.engine
        ops = []
        for _ in range(count):
            op = self.new_op("write", node, self.rng.choice(self.keys))
            op.payload = write_payload(op.id, op.key, op.id)
            op.tag = tag
            ops.append(op)
        first = []

        def submit():
            first.append(eng.log.last_index + 1)
            return eng.client_write([op.payload for op in ops])

        try:
            sim.call(node, "client_write", submit, client=True)
        except RaftError as e:
            self.stats[f"write.{type(e).__name__}"] += 1
            return None
        log = node.engine.log
        for i, op in enumerate(ops):
            index = first[0] + i
            if index > log.last_index or log.payload_at(index) != op.payload:
                raise SimViolation(f"node {node.id}: client_write did not append {op.payload!r} at index "
                                   f"{index} (log {log!r})")
            op.log_id = log.log_id_at(index)
            self.writes[op.log_id] = op
        self.stats["write.accepted"] += count
        return ops[0]

    def forward(self, node, count):
        """client_write(..., forward=True) on a follower: the writes go to the leader it knows,
        over the network (never duplicated, as over TCP), and are that leader's client writes."""
        leader = node.engine.leader_id
        if leader is None or leader == node.id:
            self.stats["forward.no_leader"] += 1
            return
        ops = []
        for _ in range(count):
            op = self.new_op("write", node, self.rng.choice(self.keys))
            op.payload = write_payload(op.id, op.key, op.id)
            op.origin = (node.id, node.incarnation)
            ops.append(op)
        self.stats["forward.sent"] += count
        self.sim.send_side(node.id, leader, "forward_write", ops, duplicate=False)

    def on_forward_write(self, leader, ops):
        """Forwarded writes reach `leader`: its client writes; a refusal goes back."""
        eng = leader.engine
        first = eng.log.last_index + 1
        try:
            self.sim.call(leader, "client_write", eng.client_write, [op.payload for op in ops], client=True)
        except RaftError as e:
            log = eng.log
            if log.last_index >= first:
                raise SimViolation(f"node {leader.id} refused forwarded writes ({e!r}) but appended at {first}")
            self.stats[f"forward.{type(e).__name__}"] += len(ops)
            self.refused.update(op.payload for op in ops)
            return
        log = eng.log
        for i, op in enumerate(ops):
            index = first + i
            if index > log.last_index or log.payload_at(index) != op.payload:
                raise SimViolation(f"node {leader.id}: a forwarded write did not append {op.payload!r} at {index}")
            op.node, op.incarnation = leader.id, leader.incarnation      # that leader acknowledges it
            op.log_id = log.log_id_at(index)
            self.writes[op.log_id] = op
        self.stats["write.accepted"] += len(ops)

    def on_forward_reply(self, node, op):
        if op.origin != (node.id, node.incarnation):
            self.stats["forward.reply_lost"] += 1           # the caller restarted: it never learns
            return
        self.stats["forward.acked"] += 1

    def read(self, node, policy):
        """ensure_linearizable on `node`: on a leader, its engine confirms the read point; on
        any other node, a follower read (as the runtime does it, etcd's follower ReadIndex): ask
        the leader it knows over the network, then serve once it has applied the read point."""
        op = self.new_op("read", node, self.rng.choice(self.keys))
        op.policy = policy
        mc = self.sim.checker.max_committed
        op.min_index = mc.index if mc is not None else 0
        if node.engine.state != LEADER:
            leader = node.engine.leader_id
            if leader is None:
                self.stats[f"read.follower.{POLICY_NAMES[policy]}.no_leader"] += 1
                return
            op.via = leader
            self.sim.send_side(node.id, leader, "follower_read", op)
            return
        self.reads[op.id] = op
        try:
            self.sim.call(node, "ensure_linearizable", node.engine.ensure_linearizable, op.id, policy,
                          client=True)
        except RaftError as e:
            self.reads.pop(op.id, None)
            self.stats[f"read.{POLICY_NAMES[policy]}.{type(e).__name__}"] += 1

    def on_follower_read(self, leader, op):
        """A follower's request for a read point reaches `leader` (each copy gets its own
        request id: the network duplicates)."""
        rid = self.next_op
        self.next_op += 1
        self.remote_reads[rid] = op
        try:
            self.sim.call(leader, "ensure_linearizable", leader.engine.ensure_linearizable, rid, op.policy,
                          client=True)
        except RaftError as e:
            self.remote_reads.pop(rid, None)
            self.sim.send_side(leader.id, op.node, "follower_read_reply", op, None, e)

    def on_follower_read_reply(self, node, op, value, error):
        if op.answered or node.incarnation != op.incarnation:
            self.stats["read.follower.late_reply"] += 1
            return
        op.answered = True
        self._read_point(node, op, value, error)

    def on_reply(self, node, req_id, value, error):
        op = self.remote_reads.pop(req_id, None)
        if op is not None:
            if op.via != node.id:
                raise SimViolation(f"node {node.id} answers a follower read {op} sent to node {op.via}")
            self.sim.send_side(node.id, op.node, "follower_read_reply", op, value, error)
            return
        op = self.reads.pop(req_id, None)
        if op is None:
            raise SimViolation(f"node {node.id}: Reply for unknown or already answered request {req_id!r}")
        if op.node != node.id:
            raise SimViolation(f"node {node.id} answers read {op} issued on node {op.node}")
        self._read_point(node, op, value, error)

    def _read_point(self, node, op, value, error):
        """The read point of `op` reached the node it was issued on: check it covers every write
        committed before the read began, then serve the read once this node has applied it."""
        name = POLICY_NAMES[op.policy] if op.via is None else f"follower.{POLICY_NAMES[op.policy]}"
        if error is not None:
            self.stats[f"read.{name}.{type(error).__name__}"] += 1
            return
        if value is None:
            if op.min_index:
                raise SimViolation(f"linearizable read {op} on node {node.id} confirmed with no read log id "
                                   f"though index {op.min_index} was committed when it was issued")
            self.stats[f"read.{name}.empty"] += 1
            return
        if value.index < op.min_index:
            raise SimViolation(f"stale read: {name} {op} on node {node.id} got read log id {value}, but "
                               f"index {op.min_index} was committed when the read was issued")
        op.read_log_id = value
        node.pending_reads.append(op)
        self.check_reads(node)

    def check_reads(self, node):
        """Serve the reads whose read log id this node has applied."""
        if not node.pending_reads:
            return
        sm = node.store.sm
        applied = sm.applied.index if sm.applied is not None else 0
        keep = []
        checker = self.sim.checker
        for op in node.pending_reads:
            if op.read_log_id.index > applied:
                keep.append(op)
                continue
            if checker.chain.get(op.read_log_id.index) != op.read_log_id:
                # The leader's blank entry, confirmed as read log id before it committed, was
                # replaced: harmless, every entry committed before the read has a lower index.
                self.stats["read.read_log_id_replaced"] += 1
            want = checker.expected_value(op.key, applied)
            got = sm.kv.get(op.key)
            if got != want:
                raise SimViolation(f"read {op} on node {node.id} at applied {sm.applied}: state machine has "
                                   f"{op.key}={got}, the committed sequence gives {want}")
            self.stats[f"read.{POLICY_NAMES[op.policy] if op.via is None else 'follower'}.ok"] += 1
        node.pending_reads = keep

    def on_applied_entry(self, node, entry):
        if self.refused and entry.payload in self.refused:
            raise SimViolation(f"node {node.id} applied {entry.log_id}, a forwarded write a leader refused "
                               f"(ForwardToLeader: never appended) {entry.payload!r}")
        op = self.writes.get(entry.log_id)
        if op is not None and op.node == node.id and op.incarnation == node.incarnation:
            del self.writes[entry.log_id]
            op.acked = self.sim.now
            self.acked.append(op)
            self.stats["write.acked"] += 1
            if op.origin is not None:
                self.sim.send_side(node.id, op.origin[0], "forward_reply", op, duplicate=False)

    def on_truncate(self, node, after):
        """`node` truncates its log after index `after`: the writes it accepted there have an
        unknown outcome (OutcomeUnknown), so they are never acknowledged, even if the same
        entry comes back to this node from another one and is applied."""
        for lid in [lid for lid, op in self.writes.items() if op.node == node.id and lid.index > after]:
            del self.writes[lid]
            self.stats["write.outcome_unknown"] += 1

    def on_crash(self, node):
        self.stats["read.lost_on_crash"] += len(node.pending_reads)
        node.pending_reads = []
        for lid in [lid for lid, op in self.writes.items() if op.node == node.id]:
            del self.writes[lid]
            self.stats["write.unacked_on_crash"] += 1
        for rid in [rid for rid, op in self.reads.items() if op.node == node.id]:
            del self.reads[rid]

    def final_checks(self):
        chain = self.sim.checker.chain
        for op in self.acked:
            if chain.get(op.log_id.index) != op.log_id:
                raise SimViolation(f"acknowledged write {op} lost: {chain.get(op.log_id.index)} is committed "
                                   f"at its index")

    # -- random actions --
    def _pick_leader(self):
        leaders = self.sim.leaders()
        return self.rng.choice(leaders) if leaders else None

    def _pick_alive(self):
        alive = self.sim.alive()
        return self.rng.choice(alive) if alive else None

    def _action(self):
        if self.stopped:
            return False
        sim = self.sim
        rng = self.rng
        sim.schedule(rng.expovariate(1 / self.action_interval), "action", self._action)
        if self.change is not None:
            self._progress_change()
        r = rng.random()
        if r < 0.55:
            node = self._pick_leader() if rng.random() < 0.85 else self._pick_alive()
            if node is not None:
                count = 1 if rng.random() < 0.8 else rng.randint(2, 5)
                if self.forward_rng is not None and node.engine.state != LEADER and self.forward_rng.random() < 0.7:
                    self.forward(node, count)
                else:
                    self.write(node, count=count)
        elif r < 0.80:
            node = self._pick_leader() if rng.random() < 0.9 else self._pick_alive()
            if node is not None:
                self.read(node, READ_INDEX if rng.random() < 0.5 else LEASE_READ)
        elif r < 0.84:
            node = self._pick_alive()
            if node is not None:
                self._trigger(node, "trigger_snapshot", node.engine.trigger_snapshot)
        elif r < 0.87:
            node = self._pick_alive()
            if node is not None:
                applied = node.engine.applied
                upto = rng.randint(0, applied.index) if applied is not None else 0
                self._trigger(node, "purge_log", node.engine.purge_log, upto)
        elif self.routine is not None:
            pass
        elif r < 0.89:
            if self.change is None:
                self._start_change()
        elif r < 0.90:
            node = self._pick_leader()
            if node is not None:
                m = node.engine.membership
                ids = sorted(m.voter_ids) if rng.random() < 0.9 else sorted(sim.nodes)
                self._trigger(node, "transfer_leader", node.engine.transfer_leader, rng.choice(ids))
        elif r < 0.905:
            node = self._pick_alive()
            if node is not None:
                self._trigger(node, "elect", node.engine.elect)
        elif r < 0.91:
            node = self._pick_leader()
            if node is not None:
                self._trigger(node, "trigger_heartbeat", node.engine.trigger_heartbeat)
        return True

    def _trigger(self, node, name, method, *args):
        try:
            self.sim.call(node, name, method, *args, client=True)
            self.stats[f"{name}.ok"] += 1
        except RaftError as e:
            self.stats[f"{name}.{type(e).__name__}"] += 1

    def _fault(self):
        if self.stopped:
            return False
        sim = self.sim
        rng = self.rng
        net = sim.network
        sim.schedule(rng.expovariate(1 / self.fault_interval), "action", self._fault)
        ids = sorted(sim.nodes)
        r = rng.random()
        if r < 0.35:
            if self.may_crash():
                # Leaders crash more often: that is where the interesting cases are.
                leader = self._pick_leader()
                victim = leader.id if leader is not None and rng.random() < 0.5 else rng.choice(ids)
                if not sim.nodes[victim].crashed:
                    sim.crash(victim)
                    self.schedule_restart(victim)
        elif r < 0.75:
            kind = rng.random()
            if kind < 0.5:
                leader = self._pick_leader()
                victim = leader.id if leader is not None and rng.random() < 0.6 else rng.choice(ids)
                before = set(net.cut)
                net.isolate(victim, ids)
            elif kind < 0.8:
                shuffled = ids[:]
                rng.shuffle(shuffled)
                k = rng.randint(1, len(ids) - 1)
                before = set(net.cut)
                net.split(shuffled[:k], shuffled[k:])
            else:
                before = set(net.cut)
                for _ in range(rng.randint(1, 4)):
                    a, b = rng.sample(ids, 2)
                    net.cut_link(a, b)
            added = sorted(net.cut - before)
            sim.stats["partition"] += 1
            sim.schedule(rng.uniform(0.1, self.partition_max), "action", self._heal, added)
        elif r < 0.85:
            net.heal()
        else:
            node = self._pick_alive()
            if node is not None:
                self._trigger(node, "elect", node.engine.elect)
        return True

    def may_crash(self):
        """Whether one more node may crash now (faults on, under the cap)."""
        if self.stopped or not self.faults_on or self.sim.now < self.quiet_until:
            return False
        return sum(1 for n in self.sim.nodes.values() if n.crashed) < self.max_crashed

    def schedule_restart(self, node_id):
        self.sim.schedule(self.rng.uniform(0.02, 1.5), "action", self._restart, node_id)

    def _restart(self, node_id):
        if self.stopped:
            return False
        self.sim.restart(node_id)
        return True

    def _heal(self, links):
        if self.stopped:
            return False
        self.sim.network.heal(links)
        return True

    # -- membership changes --
    def _start_change(self):
        sim = self.sim
        rng = self.rng
        leader = self._pick_leader()
        if leader is None:
            return
        m = leader.engine.membership
        voters = sorted(m.voter_ids)
        pool = sorted(sim.nodes)
        r = rng.random()
        kind = "random"
        goal = None
        if r < 0.2:
            others = [n for n in pool if n not in m.voter_ids]
            if len(others) >= 3:
                kind = "replace_all"
                goal = rng.sample(others, rng.randint(3, min(5, len(others))))
        elif r < 0.4:
            learners = sorted(m.learner_ids)
            if learners:
                kind = "promote"
                goal = voters + [rng.choice(learners)]
                if len(goal) > 5:
                    goal.remove(rng.choice(voters))
        elif r < 0.55:
            if len(voters) > 3:
                kind = "remove"
                goal = voters[:]
                goal.remove(rng.choice(voters))
        elif r < 0.6:
            kind = "invalid"
            unknown = [n for n in pool if n not in m.node_ids()]
            goal = [] if not unknown or rng.random() < 0.3 else [rng.choice(unknown)] + voters
        if goal is None:
            goal = rng.sample(pool, rng.randint(3, min(5, len(pool))))
        goal = frozenset(goal)
        retain = rng.random() < 0.5
        new = [n for n in sorted(goal) if n not in m.node_ids()]
        nodes = None
        if kind != "invalid" and new and rng.random() < 0.25:
            nodes = {n: Node(f"n{n}") for n in new}     # let change_membership add them
            new = []
        if kind == "invalid":
            new = []
        self.change = MembershipChange(goal, retain, nodes, new, leader, sim.now, kind)
        self.stats[f"membership.start.{kind}"] += 1
        self._progress_change()

    def start_change_to(self, leader, goal, kind):
        """Change the membership to voters `goal` (adding the new ones as learners first)."""
        goal = frozenset(goal)
        m = leader.engine.membership
        new = [n for n in sorted(goal) if n not in m.node_ids()]
        self.change = MembershipChange(goal, False, None, new, leader, self.sim.now, kind)
        self.stats[f"membership.start.{kind}"] += 1
        self._progress_change()

    def _progress_change(self):
        ch = self.change
        sim = self.sim
        node = sim.nodes[ch.leader]
        if node.crashed or node.incarnation != ch.incarnation:
            return self._end_change("leader_lost")
        eng = node.engine
        committed = eng.committed.index if eng.committed is not None else 0
        if ch.wait_index > committed:
            if eng.state != LEADER or eng.vote.leader_id != ch.leader_id:
                return self._end_change("leader_lost")
            if sim.now - ch.started > 5.0:
                return self._end_change("timeout")
            return
        if ch.calls == 2:
            return self._end_change("done")
        if eng.state != LEADER or eng.vote.leader_id != ch.leader_id:
            return self._end_change("leader_lost")
        try:
            if ch.to_add:
                nid = ch.to_add.pop(0)
                sim.call(node, "add_learner", eng.add_learner, nid, Node(f"n{nid}"), client=True)
            else:
                sim.call(node, "change_membership", eng.change_membership, ch.goal, ch.retain, ch.nodes,
                         client=True)
                ch.calls += 1
        except ChangeMembershipError as e:
            self.stats[f"membership.error.{e.reason}"] += 1
            return self._end_change(None)
        except ForwardToLeader:
            return self._end_change("leader_lost")
        except RaftError as e:
            self.stats[f"membership.error.{type(e).__name__}"] += 1
            return self._end_change(None)
        if ch.kind == "invalid":
            raise SimViolation(f"change_membership({sorted(ch.goal)}) on node {node.id} was accepted; "
                               f"expected ChangeMembershipError (membership {eng.membership!r})")
        ch.wait_index = node.engine.log.last_index

    def _end_change(self, outcome):
        if outcome is not None:
            self.stats[f"membership.{outcome}"] += 1
        self.change = None
        if self.routine is not None:
            self.routine.on_change_end(outcome)
