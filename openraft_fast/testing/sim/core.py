"""The simulation: nodes, the event queue, command execution, crash and restart, liveness.

Everything random comes from one random.Random seeded by (mode, seed); each engine gets its own
random.Random seeded from it. Time is simulated: events sit in a heap of (time, seq, kind, args),
and each node reads its own clock, offset + rate * sim_time, with rate within 1% of real.
"""
import heapq
import math
import random
from collections import Counter, deque

from openraft_fast._core import commands as C
from openraft_fast._core.engine import LEADER, Engine, PersistedState
from openraft_fast._core.messages import (AppendRequest, AppendResponse, InstallSnapshotRequest,
                                          SnapshotMeta, SnapshotResponse, TimeoutNow, VoteRequest,
                                          VoteResponse)
from openraft_fast._core.types import Membership, Node
from openraft_fast.config import Config
from openraft_fast.errors import RaftError

from openraft_fast.testing.sim.checker import Checker, SimViolation
from openraft_fast.testing.sim.elections import ElectionLog
from openraft_fast.testing.sim.network import Network, NetworkFaults
from openraft_fast.testing.sim.routine import RoutineFaults
from openraft_fast.testing.sim.storage import ContractError, NodeStorage
from openraft_fast.testing.sim.workload import Workload

# Which engine method receives each message type.
RECEIVER = {
    VoteRequest: "recv_vote",
    VoteResponse: "recv_vote_response",
    AppendRequest: "recv_append",
    AppendResponse: "recv_append_response",
    InstallSnapshotRequest: "recv_snapshot",
    SnapshotResponse: "recv_snapshot_response",
    TimeoutNow: "recv_timeout_now",
}


def replay_command(seed, steps, mode, params=None):
    """The one-line command that replays a run."""
    cmd = f"python -m openraft_fast.testing.sim --seed {seed} --steps {steps} --mode {mode}"
    params = params or {}
    if params.get("install", "sync") != "sync":
        cmd += f" --install {params['install']}"
    if params.get("strict_truncate"):
        cmd += " --strict-truncate"
    if params.get("profile", "default") != "default":
        cmd += f" --profile {params['profile']}"
    if params.get("forward"):
        cmd += " --forward"
    if params.get("sync_log") is not None:
        cmd += f" --sync-log {params['sync_log']}"
    return cmd


class SimNode:
    """One node: its engine (None while crashed), its storage and its clock."""

    def __init__(self, node_id, rng):
        self.id = node_id
        self.clock_offset = rng.uniform(0.0, 50.0)
        self.clock_rate = rng.uniform(0.99, 1.01)
        self.store = NodeStorage()
        self.engine = None
        self.incarnation = 0
        self.crashed = False
        self.tick_at = None            # sim time of the armed tick event
        self.stuck_ticks = 0
        self.flush_busy = False
        self.sync_log = False          # its store is durable on append (Engine(sync_log=True))
        self.sm_busy = False
        self.snapshots_built = 0
        # Checker bookkeeping: last values seen, for "never goes backwards".
        self.seen_vote = None
        self.seen_committed = None
        self.seen_applied = None
        self.pending_reads = []

    def clock(self, sim_time):
        return self.clock_offset + self.clock_rate * sim_time

    def sim_time(self, local):
        return (local - self.clock_offset) / self.clock_rate

    def engine_flushed(self):
        return getattr(self.engine, "flushed", None)

    def __repr__(self):
        if self.crashed or self.engine is None:
            s = self.store
            return (f"n{self.id}({'crashed' if self.crashed else 'no engine'}: saved vote={s.vote} "
                    f"log={s.log!r} durable_upto={s.durable_upto} committed={s.committed} sm={s.sm.applied})")
        e = self.engine
        return (f"n{self.id}(state={e.state} vote={e.vote} last={e.last_log_id} committed={e.committed} "
                f"applied={e.applied} sm={self.store.sm.applied} members={e.membership!r})")


class Simulation:
    """A cluster of engines driven by one seed.

    `faults` and `workload` switch off the random fault injection (network faults included)
    and the random client load: scenario tests drive those by hand. `config` overrides Config
    fields. `params` overrides the drawn shape: voters, learners, spares (nodes outside the
    initial membership), batch_crash (probability of a crash between two commands of a
    batch), install ("sync" | "async"), strict_truncate and sync_log (see below).
    """

    def __init__(self, seed, mode="adv", *, faults=True, workload=True, params=None, config=None,
                 trace_len=3000):
        self.seed = seed
        self.mode = mode
        # Two streams: `params_rng` draws the run's shape (sizes, config, fault rates, clocks),
        # `rng` drives the run itself; a new parameter then does not reshuffle the events.
        self.params_rng = rng = random.Random(f"openraft-sim-params:{mode}:{seed}")
        self.rng = random.Random(f"openraft-sim:{mode}:{seed}")
        params = dict(params or {})
        # Draw every parameter, then apply overrides: the draws stay in step across overrides.
        n_voters, n_learners, n_spares = rng.randint(3, 5), rng.randint(0, 2), rng.randint(2, 3)
        n_voters = params.pop("voters", n_voters)
        n_learners = params.pop("learners", n_learners)
        n_spares = params.pop("spares", n_spares)
        # "sync" (default, what openraft_fast.runtime does): InstallSnapshot is durable before
        # the next command runs. "async": it completes later, like Apply; the engine emits
        # PurgeLog and SaveCommitted right after it, so this mode reports that as a violation.
        self.install_async = params.pop("install", "sync") == "async"
        # Also refuse a truncation of committed entries that an InstallSnapshot of the same
        # batch covers (a crash between the two commands loses them from that node).
        self.strict_truncate = params.pop("strict_truncate", False)
        # Probability that a node crashes between two commands of a batch (None: drawn).
        self.batch_crash = params.pop("batch_crash", None)
        # "harsh": 5 or 7 voters, more drops, duplicates (some arriving very late, so across
        # leaderships), acks delayed close to the lease, long partitions, more crashes, a small
        # clock-drift margin. Drawn from its own stream: the default draws stay as they were.
        self.profile = params.pop("profile", "default")
        # Writes sent to a follower are forwarded to the leader it knows (as the runtime's
        # client_write(..., forward=True)), from their own random stream.
        forward = params.pop("forward", False)
        # Nodes whose log store is durable when append returns (Engine(sync_log=True), as with
        # MemLogStore): their appends are durable at once, with no flush event. Drawn per node
        # from its own stream (the other draws stay as they were); a share of 0 or 1 forces it.
        sync_share = params.pop("sync_log", None)
        slr = random.Random(f"openraft-sim-synclog:{mode}:{seed}")
        if sync_share is None:
            sync_share = slr.choice((0.0, 0.0, 0.5, 1.0))
        if self.profile not in ("default", "harsh", "stability"):
            raise TypeError(f"unknown simulation profile {self.profile!r}")
        hr = random.Random(f"openraft-sim-harsh:{mode}:{seed}") if self.profile == "harsh" else None
        # "stability": routine operations only (routine.py), a mild network, no mid-batch
        # crashes; pre-vote on in most seeds (the quiet windows are checked only with it).
        sr = random.Random(f"openraft-sim-stability:{mode}:{seed}") if self.profile == "stability" else None
        if hr is not None and "voters" not in params:
            n_voters = hr.choice((5, 7))
        self.crash_points = set()       # (node id, command class name): see crash_after
        if params:
            raise TypeError(f"unknown simulation params {sorted(params)}")
        cfg = dict(
            leader_id_mode=mode,
            enable_pre_vote=rng.random() < 0.5,
            snapshot_policy=rng.randint(50, 200),
            max_in_snapshot_log_to_keep=rng.randint(0, 20),
            max_payload_entries=rng.choice((4, 16, 64, 300)),
            max_inflight=rng.choice((2, 8, 64)),
            replication_lag_threshold=rng.choice((20, 100, 1000)),
            purge_batch_size=rng.choice((1, 8, 32)),
        )
        if hr is not None:
            cfg["enable_pre_vote"] = hr.random() < 0.5
            cfg["max_clock_drift"] = hr.choice((0.03, 0.05))
        if sr is not None:
            cfg["enable_pre_vote"] = sr.random() < 0.75
        cfg.update(config or {})
        batch_crash = rng.choice((0.0, 0.0005, 0.002))
        if self.batch_crash is None:
            self.batch_crash = batch_crash if faults and sr is None else 0.0
        self.config = Config(**cfg)

        self.now = 0.0
        self.queue = []
        self.seq = 0
        self.steps = 0
        self.stats = Counter()
        self.trace = deque(maxlen=trace_len)
        ids = list(range(1, n_voters + n_learners + n_spares + 1))
        self.voters0 = ids[:n_voters]
        self.learners0 = ids[n_voters:n_voters + n_learners]
        self.nodes = {i: SimNode(i, rng) for i in ids}
        for node in self.nodes.values():
            node.sync_log = slr.random() < sync_share
        self.network = Network(self.rng, NetworkFaults(rng))
        # Follower reads' messages: the same faults and cut links, their own random stream.
        self.side_network = Network(random.Random(f"openraft-sim-side:{mode}:{seed}"), self.network.faults)
        self.side_network.cut = self.network.cut
        if not faults:
            self.network.faults.calm()
        self.checker = Checker(mode == "std", LEADER, self.nodes)
        self.elections = ElectionLog(self)
        self.network.on_change = self.elections.note_fault
        self.workload = Workload(self, faults=faults, actions=workload)
        if forward:
            self.workload.forward_rng = random.Random(f"openraft-sim-forward:{mode}:{seed}")
        if hr is not None:
            if faults:
                f = self.network.faults
                f.drop = hr.choice((0.1, 0.15, 0.2))
                f.duplicate = hr.choice((0.1, 0.2))
                f.delay_max = hr.choice((0.005, 0.01, 0.02))
                f.slow_prob = hr.choice((0.05, 0.1))
                # Up to about the leader lease (0.135 s by default): acks that arrive when the
                # lease they would extend has nearly run out, grants after a higher term won.
                f.slow_max = self.config.lease * hr.choice((0.9, 1.0))
                f.late_dup = hr.choice((0.02, 0.05))
            w = self.workload
            w.fault_interval = hr.choice((0.1, 0.2, 0.5))
            w.max_crashed = hr.choice((2, 3)) if n_voters >= 7 else 2
            w.partition_max = hr.choice((2.0, 4.0))
        if sr is not None:
            if faults:
                f = self.network.faults
                f.drop = sr.choice((0.0, 0.0, 0.01))
                f.duplicate = sr.choice((0.0, 0.01))
                f.slow_prob = sr.choice((0.0, 0.02))
            w = self.workload
            w.action_interval = sr.choice((0.02, 0.05, 0.1))
            w.routine = RoutineFaults(w)

        for node in self.nodes.values():
            self._start_engine(node)
        members = self.voters0 + self.learners0
        init = self.nodes[rng.choice(self.voters0)]
        m = Membership(set(self.voters0), nodes={i: Node(f"n{i}") for i in members})
        self.call(init, "initialize", init.engine.initialize, m)
        self.workload.start()

    def describe(self):
        c = self.config
        return (f"seed={self.seed} mode={self.mode} voters={self.voters0} learners={self.learners0} "
                f"nodes={len(self.nodes)} pre_vote={c.enable_pre_vote} snapshot_policy={c.snapshot_policy} "
                f"keep={c.max_in_snapshot_log_to_keep} max_payload={c.max_payload_entries} "
                f"inflight={c.max_inflight} lag={c.replication_lag_threshold} "
                f"drop={self.network.faults.drop} dup={self.network.faults.duplicate} "
                f"sync_log={sorted(n.id for n in self.nodes.values() if n.sync_log)}")

    # -- events --
    def schedule(self, delay, kind, *args):
        self.seq += 1
        heapq.heappush(self.queue, (self.now + delay, self.seq, kind, args))

    def step(self):
        """Process events until one counts as a step (stale ones do not). False when idle."""
        queue = self.queue
        while queue:
            t, _, kind, args = heapq.heappop(queue)
            self.now = t
            if getattr(self, "_ev_" + kind)(*args):
                self.steps += 1
                return True
        return False

    def run(self, steps):
        """Run `steps` more steps of random load and faults."""
        target = self.steps + steps
        while self.steps < target:
            if not self.step():
                break

    def run_for(self, seconds):
        end = self.now + seconds
        while self.queue and self.queue[0][0] <= end:
            self.step()
        self.now = max(self.now, end)

    def run_until(self, predicate, timeout, what="condition"):
        end = self.now + timeout
        while not predicate():
            if not self.queue or self.queue[0][0] > end:
                raise SimViolation(f"liveness: {what} not reached within {timeout}s of simulated time\n"
                                   + self.cluster_state())
            self.step()

    def _ev_tick(self, node_id, incarnation):
        node = self.nodes[node_id]
        if node.crashed or node.incarnation != incarnation or node.tick_at != self.now:
            return False
        node.tick_at = None
        self.call(node, "tick", None)
        return True

    def _ev_msg(self, src, dst, dst_incarnation, msg):
        node = self.nodes[dst]
        if (node.crashed or node.incarnation != dst_incarnation or self.nodes[src].crashed
                or not self.network.reachable(src, dst)):
            self.stats["msg.lost"] += 1
            return False
        self.call(node, type(msg).__name__, getattr(node.engine, RECEIVER[type(msg)]), src, msg)
        return True

    def send_side(self, src, dst, kind, *args, duplicate=True):
        """A runtime-level message (follower reads, forwarded writes), over the same faults and
        partitions as the engines' messages but its own random stream, so runs without it
        replay as before. `duplicate=False`: a message the transports never duplicate (TCP)."""
        d = self.nodes.get(dst)
        if d is None:
            raise SimViolation(f"node {src} sends {kind} to unknown node {dst!r}")
        for delay in self.side_network.delays(src, dst, allow_duplicate=duplicate):
            self.schedule(delay, "side", kind, src, dst, d.incarnation, args)

    def _ev_side(self, kind, src, dst, dst_incarnation, args):
        node = self.nodes[dst]
        if (node.crashed or node.incarnation != dst_incarnation or self.nodes[src].crashed
                or not self.network.reachable(src, dst)):
            self.stats["msg.lost"] += 1
            return False
        getattr(self.workload, "on_" + kind)(node, *args)
        return True

    def _ev_snapshot(self, src, src_incarnation, dst, dst_incarnation, req):
        node = self.nodes[dst]
        if (node.crashed or node.incarnation != dst_incarnation or self.nodes[src].crashed
                or not self.network.reachable(src, dst)):
            self._snapshot_failed(src, src_incarnation, dst, req.msg_id)
            return False
        self.call(node, "InstallSnapshotRequest", node.engine.recv_snapshot, src, req)
        return True

    def _snapshot_failed(self, src, src_incarnation, dst, msg_id):
        self.stats["snapshot.send_failed"] += 1
        self.schedule(self.rng.uniform(0.001, 0.02), "snapshot_failed", src, src_incarnation, dst, msg_id)

    def _ev_snapshot_failed(self, src, src_incarnation, dst, msg_id):
        node = self.nodes[src]
        if node.crashed or node.incarnation != src_incarnation:
            return False
        self.call(node, "on_snapshot_send_failed", node.engine.on_snapshot_send_failed, dst, msg_id)
        return True

    def _ev_flush(self, node_id, incarnation):
        node = self.nodes[node_id]
        if node.crashed or node.incarnation != incarnation:
            return False
        node.flush_busy = False
        rec = node.store.complete_flush()
        if rec.intact:
            self.call(node, "on_log_flushed", node.engine.on_log_flushed, rec.last_log_id)
        else:
            self.stats["flush.superseded"] += 1
        self._kick_flush(node)
        return True

    def _ev_sm(self, node_id, incarnation):
        node = self.nodes[node_id]
        if node.crashed or node.incarnation != incarnation:
            return False
        node.sm_busy = False
        op = node.store.sm_ops.popleft()
        if op[0] not in ("applied", "built", "installed"):
            op = self._sm_effect(node, op)
        eng = node.engine
        if op[0] == "applied":
            self.call(node, "on_applied", eng.on_applied, op[1])
        elif op[0] == "built":
            self.call(node, "on_snapshot_built", eng.on_snapshot_built, op[1])
        else:
            self.call(node, "on_snapshot_installed", eng.on_snapshot_installed, op[1])
        self._kick_sm(node)
        return True

    def _sm_effect(self, node, op):
        """Do the state machine work of `op`; returns the completion to report."""
        store = node.store
        sm = store.sm
        kind = op[0]
        if kind == "apply":
            entries = op[1]
            on_entry = self.workload.on_applied_entry
            for e in entries.entries():
                self.checker.on_apply(node.id, sm, e)
                sm.apply(e)
                on_entry(node, e)
            self.stats["applied"] += len(entries)
            self.workload.check_reads(node)
            return ("applied", entries.last_log_id)
        if kind == "build":
            node.snapshots_built += 1
            mlid, membership = sm.membership if sm.membership else (None, None)
            meta = SnapshotMeta(sm.applied, mlid, membership,
                                f"{node.id}-{node.incarnation}-{node.snapshots_built}")
            store.snapshot = (meta, sm.data())
            self.stats["snapshot.built"] += 1
            return ("built", meta)
        meta, data = op[1], op[2]
        self.checker.on_install(node.id, sm, meta, data)
        sm.restore(data)
        store.snapshot = (meta, data)
        self.stats["snapshot.installed"] += 1
        self.workload.check_reads(node)
        return ("installed", meta)

    def _install_now(self, node, meta, data):
        """InstallSnapshot done before the next command runs: the queued state machine work
        finishes first (its completions are still reported in order, later)."""
        ops = node.store.sm_ops
        done = [op if op[0] in ("applied", "built", "installed") else self._sm_effect(node, op) for op in ops]
        ops.clear()
        ops.extend(done)
        ops.append(self._sm_effect(node, ("install", meta, data)))
        self._kick_sm(node)

    def _ev_action(self, fn, *args):
        return fn(*args)

    # -- calling an engine --
    def call(self, node, label, method, *args, client=False):
        """tick(now), then `method(*args)`; execute all commands; check invariants.

        With client=True a RaftError from `method` is re-raised (after the commands of the
        tick ran); any other engine exception is a violation.
        """
        eng = node.engine
        trace = self.trace
        trace.append((self.steps, self.now, node.id, label, args))
        local_now = node.clock(self.now)
        try:
            cmds = eng.tick(local_now)
        except Exception as e:
            self._engine_raised(node, "tick", e)
        if cmds:
            self.execute(node, cmds)
        error = None
        if method is not None:
            try:
                cmds = method(*args)
            except RaftError as e:
                if not client:
                    self._engine_raised(node, label, e)
                error = e
                cmds = None
                trace.append((self.steps, self.now, node.id, "raised", (e,)))
            except SimViolation:
                raise
            except Exception as e:
                self._engine_raised(node, label, e)
            if cmds:
                k = self._crash_point(node, cmds)
                if k is not None:
                    self.execute(node, cmds[:k], partial=True)
                    self.stats["crash.at_point"] += 1
                    self.trace.append((self.steps, self.now, node.id, "crash at point", (k, len(cmds))))
                    self.checker.before_crash(node)
                    self.crash(node.id)
                    return
                if (self.batch_crash and not client and len(cmds) > 1 and self.workload.may_crash()
                        and self.rng.random() < self.batch_crash):
                    # The node dies between two commands: the first k ran (durable as the
                    # contract says), the rest never will.
                    k = self.rng.randint(1, len(cmds) - 1)
                    self.execute(node, cmds[:k], partial=True)
                    self.stats["crash.mid_batch"] += 1
                    self.trace.append((self.steps, self.now, node.id, "crash mid-batch", (k, len(cmds))))
                    self.checker.before_crash(node)
                    self.crash(node.id)
                    self.workload.schedule_restart(node.id)
                    return
                self.execute(node, cmds)
        self.checker.after_call(node)
        self.elections.observe(node)
        self._arm_tick(node, local_now)
        if error is not None:
            raise error

    def _crash_point(self, node, cmds):
        """How many commands of `cmds` run before a requested crash point (see crash_after)."""
        if not self.crash_points:
            return None
        for i, c in enumerate(cmds):
            key = (node.id, type(c).__name__)
            if key in self.crash_points:
                self.crash_points.discard(key)
                return i + 1
        return None

    def crash_after(self, node_id, command_name):
        """Crash `node_id` right after it next executes a command of that class (e.g.
        "InstallSnapshot"): the rest of that batch never runs. For scenario tests."""
        self.crash_points.add((node_id, command_name))

    def _engine_raised(self, node, what, exc):
        raise SimViolation(f"node {node.id}: engine raised {type(exc).__name__} in {what}: {exc}") from exc

    def _arm_tick(self, node, local_now):
        deadline = node.engine.next_deadline
        if deadline is None or deadline == math.inf:
            return
        if deadline <= local_now:
            # tick(now) left the deadline at or before now. The engine keeps integer microseconds
            # and truncates tick's float argument, so tick(next_deadline) can land 1 us short:
            # a real clock moves on, so try again one microsecond later; a deadline that does
            # not move then is a busy loop.
            self.stats["tick.not_advanced"] += 1
            if node.stuck_ticks > 3:
                raise SimViolation(f"node {node.id}: next_deadline {deadline} stays <= now {local_now} "
                                   f"after {node.stuck_ticks} ticks (a busy loop for a real runtime)")
            node.stuck_ticks += 1
            t = node.sim_time(local_now + 1e-6)
        else:
            node.stuck_ticks = 0
            t = node.sim_time(deadline)
            while node.clock(t) < deadline:
                t = math.nextafter(t, math.inf)
        if node.tick_at is None or t < node.tick_at:
            node.tick_at = t
            self.seq += 1
            heapq.heappush(self.queue, (t, self.seq, "tick", (node.id, node.incarnation)))

    def execute(self, node, cmds, partial=False):
        """Run commands in order, as the contract in commands.pxd asks. `partial`: the node
        crashes after these, the first commands of a batch."""
        store = node.store
        checker = self.checker
        trace = self.trace
        truncated_committed = None
        for c in cmds:
            code = c.code
            trace.append((self.steps, self.now, node.id, "cmd", c))
            try:
                if code == C.SEND or code == C.SEND_HEARTBEAT or code == C.RESPOND:
                    checker.on_outgoing(node, c.msg)
                    self.elections.on_send(c.msg)
                    self._send(node, c.target, c.msg)
                elif code == C.APPEND_LOG:
                    checker.on_append(node.id, store.log, c.entries)
                    if node.sync_log:
                        store.append_durable(c.entries)
                    else:
                        store.append(c.entries)
                        self._kick_flush(node)
                elif code == C.APPLY:
                    e = node.engine
                    last = c.entries.stop - 1
                    if e.committed is None or last > e.committed.index:
                        raise SimViolation(f"node {node.id} applies up to index {last} beyond committed "
                                           f"{e.committed}")
                    store.sm_ops.append(("apply", c.entries))
                    self._kick_sm(node)
                elif code == C.SAVE_VOTE:
                    if store.vote is not None and not c.vote >= store.vote:
                        raise SimViolation(f"node {node.id} saves vote {c.vote} over {store.vote}: backwards")
                    store.vote = c.vote
                elif code == C.SAVE_COMMITTED:
                    if store.committed is not None and c.log_id < store.committed:
                        raise SimViolation(f"node {node.id} saves committed {c.log_id} over {store.committed}")
                    store.committed = c.log_id
                elif code == C.TRUNCATE_LOG:
                    lost = checker.on_truncate(node.id, store.log, c.after)
                    if lost is not None:
                        if truncated_committed is None or lost.index > truncated_committed[0].index:
                            truncated_committed = (lost, store.log.last_log_id)
                        if self.strict_truncate:
                            raise SimViolation(f"node {node.id} truncates committed entry {lost} "
                                               f"(TruncateLog(after={c.after}))")
                    store.truncate(c.after)
                    self.workload.on_truncate(node, c.after)
                elif code == C.PURGE_LOG:
                    self._check_purge(node, c.upto)
                    store.purge(c.upto)
                elif code == C.REPLY:
                    self.workload.on_reply(node, c.req_id, c.value, c.error)
                elif code == C.BUILD_SNAPSHOT:
                    store.sm_ops.append(("build",))
                    self._kick_sm(node)
                elif code == C.INSTALL_SNAPSHOT:
                    if truncated_committed is not None and c.meta.last_log_id is not None and \
                            c.meta.last_log_id.index >= truncated_committed[0].index:
                        # Replaced by a snapshot that covers it: lost only if the node crashes
                        # between the two commands.
                        self.stats["truncate.committed_before_install"] += 1
                        truncated_committed = None
                    if self.install_async:
                        store.sm_ops.append(("install", c.meta, c.data))
                        self._kick_sm(node)
                    else:
                        self._install_now(node, c.meta, c.data)
                elif code == C.SEND_SNAPSHOT:
                    self._send_snapshot(node, c.target, c.req)
                else:
                    raise SimViolation(f"node {node.id}: unknown command {c!r}")
            except ContractError as e:
                raise SimViolation(f"node {node.id}: {e}") from None
        if truncated_committed is not None:
            lost, last = truncated_committed
            if partial and not self.strict_truncate:
                # The crash hits between the truncation and the InstallSnapshot that was to
                # replace the entries: they are gone from this node (reported; what follows
                # from it is checked by the other invariants).
                self.stats["truncate.committed_lost_in_crash"] += 1
                return
            raise SimViolation(f"node {node.id} truncates committed entry {lost} (its log ended at {last})")

    def _check_purge(self, node, upto):
        """Purged entries must already be in the durable state machine or snapshot."""
        store = node.store
        covered = store.sm.applied.index if store.sm.applied is not None else 0
        if store.snapshot is not None and store.snapshot[0].last_log_id is not None:
            covered = max(covered, store.snapshot[0].last_log_id.index)
        if upto.index > covered:
            pending = [op[1].last_log_id for op in store.sm_ops if op[0] == "install"]
            raise SimViolation(
                f"node {node.id} purges the log up to {upto} but its state machine and snapshot only "
                f"cover index {covered}" + (f" (an InstallSnapshot up to {pending} is still running: "
                                            f"a crash now loses entries)" if pending else ""))

    def _send(self, node, target, msg):
        dst = self.nodes.get(target)
        if dst is None:
            raise SimViolation(f"node {node.id} sends {type(msg).__name__} to unknown node {target!r}")
        for delay in self.network.delays(node.id, target):
            self.schedule(delay, "msg", node.id, target, dst.incarnation, msg)

    def _send_snapshot(self, node, target, req):
        dst = self.nodes.get(target)
        if dst is None:
            raise SimViolation(f"node {node.id} sends a snapshot to unknown node {target!r}")
        snap = node.store.snapshot
        if snap is None or snap[0] != req.meta:
            raise SimViolation(f"node {node.id} sends snapshot {req.meta!r} but its current snapshot "
                               f"is {snap[0] if snap else None!r}")
        self.stats["snapshot.sent"] += 1
        delays = self.network.delays(node.id, target, allow_duplicate=False)
        if not delays:
            self._snapshot_failed(node.id, node.incarnation, target, req.msg_id)
            return
        # A snapshot is bulk data: it takes longer than a message.
        self.schedule(delays[0] * 5 + 0.002, "snapshot", node.id, node.incarnation, target,
                      dst.incarnation, req.with_data(snap[1]))

    def _kick_flush(self, node):
        if not node.flush_busy and node.store.flushes:
            node.flush_busy = True
            self.schedule(self.rng.uniform(0.0002, 0.004), "flush", node.id, node.incarnation)

    def _kick_sm(self, node):
        if not node.sm_busy and node.store.sm_ops:
            node.sm_busy = True
            kind = node.store.sm_ops[0][0]
            hi = 0.02 if kind == "build" else 0.003
            self.schedule(self.rng.uniform(0.0002, hi), "sm", node.id, node.incarnation)

    # -- crash and restart --
    def _start_engine(self, node):
        store = node.store
        durable = store.persisted()
        rng = random.Random(self.rng.getrandbits(64))
        self.trace.append((self.steps, self.now, node.id, "start", (node.incarnation,)))
        try:
            eng = Engine(node.id, self.config, PersistedState(**durable), rng, node.clock(self.now),
                         sync_log=node.sync_log)
            node.engine = eng
            cmds = eng.startup()
        except Exception as e:
            self._engine_raised(node, "Engine()/startup()", e)
        node.seen_vote = node.seen_committed = node.seen_applied = None
        self.checker.after_restart(node, durable["vote"], durable["committed"], durable["applied"])
        self.execute(node, cmds)
        self.checker.after_call(node)
        self.elections.observe(node)
        self._arm_tick(node, node.clock(self.now))

    def crash(self, node_id):
        node = self.nodes[node_id]
        if node.crashed:
            return
        self.trace.append((self.steps, self.now, node_id, "crash", ()))
        self.stats["crash"] += 1
        self.elections.note_fault("leader_crash" if node.engine.state == LEADER else "crash", node_id)
        node.crashed = True
        node.engine = None
        node.tick_at = None
        node.flush_busy = node.sm_busy = False
        node.store.crash()
        self.workload.on_crash(node)

    def restart(self, node_id):
        node = self.nodes[node_id]
        if not node.crashed:
            return
        node.crashed = False
        node.incarnation += 1
        self.stats["restart"] += 1
        self.elections.note_fault("restart", node_id)
        self._start_engine(node)

    # -- elections --
    def expect_quiet(self, what, allow=0, faults=None):
        """A window from now until its check(): at most `allow` elections (0: no vote changes
        at all) and only the fault kinds in `faults` (see elections.py). Also a context manager."""
        return self.elections.window(what, allow, faults)

    # -- views --
    def alive(self):
        return [n for n in self.nodes.values() if not n.crashed]

    def leaders(self):
        return [n for n in self.nodes.values() if not n.crashed and n.engine.state == LEADER]

    def leader(self):
        """The leader with the greatest vote, or None."""
        best = None
        for n in self.leaders():
            if best is None or n.engine.vote.leader_id.term > best.engine.vote.leader_id.term or (
                    n.engine.vote >= best.engine.vote):
                best = n
        return best

    def leader_ready(self, node):
        """A leader that has committed an entry of its own leadership (its blank entry)."""
        eng = node.engine
        c = eng.committed
        return c is not None and c.leader_id == eng.vote.leader_id.to_committed()

    def wait_leader(self, timeout=5.0, exclude=()):
        """Run until a ready leader (not in `exclude`) exists; returns it."""
        def ready():
            n = self.leader()
            return n is not None and n.id not in exclude and self.leader_ready(n)
        self.run_until(ready, timeout, "a leader")
        return self.leader()

    def wait_committed(self, node, index, timeout=5.0):
        def done():
            c = node.engine.committed if not node.crashed else None
            return c is not None and c.index >= index
        self.run_until(done, timeout, f"node {node.id} committing index {index}")

    def wait_applied_everywhere(self, index, node_ids, timeout=5.0):
        def done():
            return all(not self.nodes[i].crashed and self.nodes[i].store.sm.applied is not None
                       and self.nodes[i].store.sm.applied.index >= index for i in node_ids)
        self.run_until(done, timeout, f"nodes {sorted(node_ids)} applying index {index}")

    def cluster_state(self):
        lines = [f"  t={self.now:.4f} step={self.steps} cut={sorted(self.network.cut)}"]
        lines += [f"  {n!r}" for n in self.nodes.values()]
        return "\n".join(lines)

    def format_trace(self, last=200):
        out = []
        items = list(self.trace)[-last:]
        for step, t, nid, label, args in items:
            if label == "cmd":
                out.append(f"{step:6d} {t:9.5f} n{nid}   -> {args!r}")
            else:
                out.append(f"{step:6d} {t:9.5f} n{nid} {label} {', '.join(map(repr, args))}")
        return "\n".join(out)

    # -- liveness --
    def heal_all(self):
        """Stop injecting faults, heal the network and restart every crashed node."""
        self.workload.stop()
        self.network.heal()
        self.network.faults.calm()
        for nid in sorted(self.nodes):
            self.restart(nid)

    def check_liveness(self, timeout=None):
        """After heal_all(): a leader emerges, and a marker write plus every write pending on it
        commit and are applied on every member of its membership."""
        if timeout is None:
            timeout = 20 * self.config.election_timeout_max
        w = self.workload
        state = {"marker": None, "leader": None}

        def done():
            leader = self.leader()
            if leader is None:
                return False
            lid = leader.engine.vote.leader_id
            marker = state["marker"]
            if marker is None or state["leader"] != (leader.id, leader.incarnation, lid):
                op = w.write(leader, tag="marker")
                if op is None:
                    return False
                state["marker"] = op
                state["leader"] = (leader.id, leader.incarnation, lid)
                return False
            if marker.acked is None:
                return False
            committed_lid = lid.to_committed()
            target = marker.log_id.index
            for op in w.pending_writes():
                if (op.node == leader.id and op.incarnation == leader.incarnation
                        and op.log_id.leader_id == committed_lid):
                    return False
            m = leader.engine.membership
            for nid in sorted(m.voter_ids | m.learner_ids):
                n = self.nodes[nid]
                if n.crashed or n.store.sm.applied is None or n.store.sm.applied.index < target:
                    return False
            return True

        start = self.now
        self.run_until(done, timeout, "a leader with every write committed and applied on all members")
        self.stats["liveness.ms"] = int((self.now - start) * 1000)
        w.final_checks()
        return state["leader"]
