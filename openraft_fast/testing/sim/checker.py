"""Safety invariants, checked as the simulation runs.

Global knowledge is kept incrementally so every check is O(what the step changed):
- `entries`: every log id ever appended anywhere -> (kind, payload, parent log id). Two entries
  with one log id must be equal and follow equal parents: by induction that is log matching.
- `chain`: index -> the log id known committed there (from applied entries and committed
  reports). State-machine safety: every node applies exactly this sequence, in order.
- `kv_history`: key -> the indexes and values of the writes in the chain, for reads.

Commit rule (Raft 5.4.2): when a leader moves the highest committed index known so far, a
quorum of its voters must hold, durably, an entry of its own leadership at or after the new
commit point. Counting replicas of an older leadership's entry is not enough (Figure 8 of the
Raft paper): that entry can still be overwritten. The loss only shows later, and only after a
rare sequence of crashes; this check catches the premature commit itself (`commit_rule`).
"""
from bisect import bisect_right

from openraft_fast._core.messages import AppendRequest, AppendResponse, VoteRequest, VoteResponse
from openraft_fast._core.quorum import from_configs
from openraft_fast._core.types import MEMBERSHIP

from openraft_fast.testing.sim.storage import decode_write


class SimViolation(AssertionError):
    """A broken invariant or contract; the message says which and where."""


def _fmt(x):
    return "None" if x is None else str(x)


def log_holds(log, log_id):
    """Whether a log (LogBuffer) holds `log_id`, counting the purged prefix as held."""
    if log_id is None:
        return True
    if log_id.index < log.first_index:
        return True
    return log.log_id_at(log_id.index) == log_id


class Checker:
    def __init__(self, std, leader_state, nodes=None):
        self.std = std
        self.LEADER = leader_state
        self.nodes = nodes                # node id -> SimNode, for the durable logs (commit rule)
        self.commit_rule = nodes is not None
        self.entries = {}
        self.chain = {}
        self.applied_max = 0
        self.kv_history = {}
        self.max_committed = None
        self.commit_marks = []            # (committed log id, leader id of the leadership that committed it)
        self.leader_of_term = {}          # std mode: term -> the one node that led it
        self.leader_ids = set()           # every leader id seen leading

    @staticmethod
    def fail(msg):
        raise SimViolation(msg)

    # -- log matching --
    def on_append(self, node_id, log, entries):
        """Called before `entries` are appended to `log` (a node's store)."""
        prev = log.log_id_at(entries.start - 1) if entries.start > 1 else None
        reg = self.entries
        for e in entries.entries():
            lid = e.log_id
            got = reg.get(lid)
            if got is None:
                reg[lid] = (e.kind, e.payload, prev)
            else:
                kind, payload, parent = got
                if kind != e.kind or payload != e.payload:
                    self.fail(f"two different entries with log id {lid}: {payload!r} and, on node "
                              f"{node_id}, {e.payload!r} (election safety / log matching)")
                if parent != prev:
                    self.fail(f"log matching: on node {node_id} entry {lid} follows {_fmt(prev)}, "
                              f"elsewhere it follows {_fmt(parent)}")
            prev = lid

    def on_truncate(self, node_id, log, after):
        """Truncating a committed entry loses it; returns the last committed entry truncated
        (the caller allows that only right before an InstallSnapshot that covers it), or None."""
        lost = None
        i = after + 1
        chain = self.chain
        while i <= log.last_index:
            held = log.log_id_at(i)
            if chain.get(i) != held:
                break
            lost = held
            i += 1
        return lost

    # -- state-machine safety --
    def _on_chain(self, node_id, log_id, what):
        known = self.chain.get(log_id.index)
        if known is None:
            self.chain[log_id.index] = log_id
        elif known != log_id:
            self.fail(f"state-machine safety: node {node_id} {what} {log_id} but {known} is committed "
                      f"at index {log_id.index}")

    def on_apply(self, node_id, sm, entry):
        lid = entry.log_id
        expect = 1 if sm.applied is None else sm.applied.index + 1
        if lid.index != expect:
            self.fail(f"node {node_id} applies {lid} but its state machine is at {_fmt(sm.applied)} "
                      f"(a gap or a repeat)")
        reg = self.entries.get(lid)
        if reg is None:
            self.fail(f"node {node_id} applies {lid}, an entry no node ever appended")
        if reg[0] != entry.kind or reg[1] != entry.payload:
            self.fail(f"node {node_id} applies {lid} with payload {entry.payload!r}, appended as {reg[1]!r}")
        self._on_chain(node_id, lid, "applies")
        if lid.index > self.applied_max:
            # First time anyone applies this index: indexes arrive here in increasing order.
            self.applied_max = lid.index
            if entry.kind != MEMBERSHIP:
                w = decode_write(entry.payload)
                if w is not None:
                    idx, vals = self.kv_history.setdefault(w[1], ([], []))
                    idx.append(lid.index)
                    vals.append(w[2])

    def on_install(self, node_id, sm, meta, data):
        last = meta.last_log_id
        if last is None:
            self.fail(f"node {node_id} installs a snapshot without a last log id: {meta!r}")
        if sm.applied is not None and (last.index < sm.applied.index or
                                       (last.index == sm.applied.index and last != sm.applied)):
            self.fail(f"node {node_id} installs snapshot up to {last} over applied {sm.applied}: "
                      f"applied would go backwards")
        if data[1] != last:
            self.fail(f"node {node_id} installs snapshot {meta!r} whose data is up to {_fmt(data[1])}")
        if self.chain.get(last.index) != last or last.index > self.applied_max:
            self.fail(f"node {node_id} installs a snapshot up to {last}, which is not in the applied "
                      f"sequence ({_fmt(self.chain.get(last.index))} is)")

    def expected_value(self, key, upto_index):
        """The value of `key` after applying the chain up to `upto_index`."""
        h = self.kv_history.get(key)
        if h is None:
            return None
        i = bisect_right(h[0], upto_index)
        return h[1][i - 1] if i else None

    # -- what must be durable before a message leaves --
    def on_outgoing(self, node, msg):
        store = node.store
        t = type(msg)
        if t is VoteResponse:
            if msg.granted and not msg.pre_vote and (store.vote is None or
                                                     store.vote.leader_id != msg.vote.leader_id):
                self.fail(f"node {node.id} grants vote {msg.vote} before saving it (saved: {_fmt(store.vote)})")
        elif t is AppendResponse:
            if msg.result == 0 and msg.matched is not None:
                m = msg.matched
                if m.index > store.durable_upto or not log_holds(store.log, m):
                    self.fail(f"node {node.id} acknowledges {m} before it is durable (durable up to "
                              f"{store.durable_upto}, log {store.log!r})")
        elif t is VoteRequest:
            if not msg.pre_vote and (store.vote is None or store.vote.leader_id != msg.vote.leader_id):
                self.fail(f"node {node.id} asks for votes as {msg.vote} before saving that vote "
                          f"(saved: {_fmt(store.vote)})")
        elif t is AppendRequest:
            if store.vote is None or store.vote.leader_id != msg.vote.leader_id:
                self.fail(f"node {node.id} replicates as {msg.vote} but its saved vote is {_fmt(store.vote)}")

    # -- per-node checks after each call into an engine --
    def after_call(self, node):
        eng = node.engine
        store = node.store
        nid = node.id

        vote = eng.vote
        if node.seen_vote is not None and vote is not node.seen_vote and not vote >= node.seen_vote:
            self.fail(f"node {nid} vote went backwards: {node.seen_vote} -> {vote}")
        node.seen_vote = vote
        if store.vote is not None and not vote >= store.vote:
            self.fail(f"node {nid} engine vote {vote} is behind its saved vote {store.vote}")

        c = eng.committed
        if c is not node.seen_committed:
            old = node.seen_committed
            if old is not None and (c is None or c < old):
                self.fail(f"node {nid} committed went backwards: {old} -> {_fmt(c)}")
            node.seen_committed = c
            if c is not None:
                self._on_chain(nid, c, "reports committed")
                mc = self.max_committed
                if mc is None or c.index > mc.index:
                    if not log_holds(eng.log, mc):
                        self.fail(f"node {nid} commits {c} but its log lacks {mc}, committed earlier")
                    # Only a leader decides a commit. A node restarted with its own committed vote
                    # reports a commit it decided before a crash in the same call (checked
                    # then: before_crash), with the memberships it held in memory lost.
                    if self.commit_rule and eng.state == self.LEADER:
                        self._check_commit_rule(nid, eng, c)
                    self.max_committed = c
                    # The node knows it from its leader, or is that leader: its vote names it.
                    self.commit_marks.append((c, vote.leader_id))

        a = eng.applied
        if a is not node.seen_applied:
            old = node.seen_applied
            if old is not None and (a is None or a < old):
                self.fail(f"node {nid} applied went backwards: {old} -> {_fmt(a)}")
            node.seen_applied = a
            if a is not None:
                sa = store.sm.applied
                if sa is None or a.index > sa.index:
                    self.fail(f"node {nid} engine.applied {a} is ahead of its state machine {_fmt(sa)}")
                if c is None or a.index > c.index:
                    self.fail(f"node {nid} applied {a} beyond committed {_fmt(c)}")

        # The engine's log view is exactly what its commands wrote.
        elog = eng.log
        slog = store.log
        if elog.last_index != slog.last_index or elog.last_log_id != slog.last_log_id:
            self.fail(f"node {nid} engine log ends at {_fmt(elog.last_log_id)} but its commands wrote "
                      f"a log ending at {_fmt(slog.last_log_id)}")
        if elog.purged != slog.purged:
            self.fail(f"node {nid} engine log purged {_fmt(elog.purged)} but its commands purged "
                      f"{_fmt(slog.purged)}")
        p = slog.purged
        if p is not None:
            known = self.chain.get(p.index)
            if known is not None and known != p:
                self.fail(f"node {nid} purged up to {p} but {known} is committed at that index")

        # What the engine believes flushed must be durable.
        f = node.engine_flushed()
        if f is not None and f.index > 0:
            if f.index > store.durable_upto or not log_holds(slog, f):
                self.fail(f"node {nid} engine.flushed is {f} but the durable log holds only up to "
                          f"{store.durable_upto} ({_fmt(slog.log_id_at(min(f.index, slog.last_index)))})")

        if eng.state == self.LEADER:
            self._check_leader(node, eng)

    def before_crash(self, node):
        """A node dies in the middle of a call: a commit it decided in that call is checked now,
        while its engine (and the memberships it held, maybe not yet durable) still exists."""
        eng = node.engine
        c = eng.committed
        mc = self.max_committed
        if self.commit_rule and eng.state == self.LEADER and c is not None and (mc is None or c.index > mc.index):
            self._check_commit_rule(node.id, eng, c)

    def _check_commit_rule(self, nid, eng, c):
        """Leader `nid` newly commits up to `c` (beyond anything committed before): a quorum of
        its voters must durably hold an entry of its leadership at or after `c`."""
        own = eng.vote.leader_id.to_committed()
        log = eng.log
        if c.leader_id == own:
            need = c
        else:
            # c is of an older leadership: the leader's own entries (its blank entry first)
            # are the tail of its log; the first one after c must be on a quorum.
            lo, hi = c.index + 1, log.last_index
            if hi < lo or log.leader_id_at(hi) != own:
                self.fail(f"commit rule: leader {nid} ({eng.vote}) commits {c}, an entry of an older "
                          f"leadership, with no entry of its own after it (its log ends at "
                          f"{_fmt(log.last_log_id)})")
            while lo < hi:
                mid = (lo + hi) // 2
                if log.leader_id_at(mid) == own:
                    hi = mid
                else:
                    lo = mid + 1
            need = log.log_id_at(lo)
        nodes = self.nodes
        held = {}

        def holders(ids):
            out = []
            for v in ids:
                h = held.get(v)
                if h is None:
                    st = nodes[v].store
                    h = held[v] = st.durable_upto >= need.index and log_holds(st.log, need)
                if h:
                    out.append(v)
            return out

        quorum = eng.quorum
        if quorum.is_quorum(holders(quorum.ids)):
            return
        # The commit may have been decided before the leader appended a newer membership: any
        # config in effect since the leader's log reached `need` counts (the last one at or
        # before `need`, and the later ones).
        factory = eng.config.quorum_factory or from_configs
        configs = [(eng.committed_membership_log_id, eng.committed_membership)]
        base = configs[0][0].index if configs[0][0] is not None else 0
        configs += [(lid, m) for lid, m in log.membership_entries(base + 1, log.last_index + 1)]
        first = 0
        for i, (lid, _) in enumerate(configs):
            if lid is not None and lid.index <= need.index:
                first = i
        for _, m in configs[first:]:
            if m is not None and factory(m.configs).is_quorum(holders(sorted(m.voter_ids))):
                return
        what = "it" if need is c else f"{need}, its first entry after it"
        self.fail(f"commit rule: leader {nid} ({eng.vote}) commits {c} but only nodes "
                  f"{sorted(v for v, h in held.items() if h)} of voters {list(quorum.ids)} durably hold "
                  f"{what}: not a quorum (Raft 5.4.2: only an entry of the leader's own term commits "
                  f"by counting replicas)")

    def _check_leader(self, node, eng):
        v = eng.vote
        lid = v.leader_id
        if lid.node_id != node.id:
            self.fail(f"node {node.id} is leader with vote {v} for another node")
        if not v.committed:
            self.fail(f"node {node.id} is leader with an uncommitted vote {v}")
        if self.std:
            other = self.leader_of_term.get(lid.term)
            if other is None:
                self.leader_of_term[lid.term] = node.id
            elif other != node.id:
                self.fail(f"election safety: nodes {other} and {node.id} both led term {lid.term}")
        if lid not in self.leader_ids:
            # A new leadership: complete when elected. (A leader id seen before, e.g. one a
            # restarted node restores, is not a new election; a stale leader cannot commit.)
            self.leader_ids.add(lid)
            mc = self._committed_below(lid)
            if not log_holds(eng.log, mc):
                self.fail(f"leader completeness: node {node.id} became leader ({v}) without committed "
                          f"entry {mc} (its log: {eng.log!r}, last {_fmt(eng.log.last_log_id)})")

    def _committed_below(self, own):
        """The newest log id committed by a leadership lower than `own`. Raft's leader
        completeness speaks only of entries committed in lower terms: a leader of an older
        term, elected by a late grant after its voter helped a higher term commit, may lack
        what that term committed (it can commit nothing). `commit_marks` records, for every
        advance of the highest committed index, the leadership that made it."""
        std = self.std
        for c, by in reversed(self.commit_marks):
            if (by.term < own.term) if std else (by < own):
                return c
        return None

    def after_restart(self, node, durable_vote, durable_committed, durable_applied):
        """A restarted engine starts from at least what its node made durable."""
        eng = node.engine
        if durable_vote is not None and not eng.vote >= durable_vote:
            self.fail(f"node {node.id} restarted with vote {eng.vote}, behind its saved vote {durable_vote}")
        floor = durable_committed
        if durable_applied is not None and (floor is None or durable_applied > floor):
            floor = durable_applied
        if floor is not None and (eng.committed is None or eng.committed < floor):
            self.fail(f"node {node.id} restarted with committed {_fmt(eng.committed)}, behind what it "
                      f"made durable ({floor})")
        if durable_applied is not None and (eng.applied is None or eng.applied < durable_applied):
            self.fail(f"node {node.id} restarted with applied {_fmt(eng.applied)}, behind its state "
                      f"machine ({durable_applied})")
