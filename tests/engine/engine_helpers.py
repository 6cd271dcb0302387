"""Builders for the engine tests (openraft's engine-test style).

Every test builds an engine in a given state through the public API (Engine + PersistedState
+ startup(), then messages fed to it), feeds ONE event and asserts the resulting state and the
exact list of commands. The helpers here build those states:

- L / V / LID: leader ids, votes and log ids in a given leader-id mode ("adv" or "std");
- make_log / S: a LogBuffer, or the LogSlice an AppendLog / AppendRequest must carry;
- new_engine: an engine restarted from a PersistedState (startup() already called);
- make_leader / make_follower / make_candidate: engines driven into a role by feeding them
  vote responses and append requests;
- ok_response / conflict_response / ack: what a follower would answer to an AppendRequest.
"""
import random

from openraft_fast._core.commands import (Apply, AppendLog, BuildSnapshot, InstallSnapshot, PurgeLog, Reply,
                                          Respond, SaveCommitted, SaveVote, Send, SendHeartbeat, SendSnapshot,
                                          TruncateLog)
from openraft_fast._core.engine import CANDIDATE, FOLLOWER, LEADER, LEARNER, Engine, PersistedState  # noqa: F401
from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.messages import (CONFLICT, HIGHER_VOTE, OK, AppendRequest, AppendResponse,
                                          VoteRequest, VoteResponse)
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL, Entry, LeaderId, LogId, Membership, Node, Vote
from openraft_fast.config import Config

MODES = ("adv", "std")


# ---------------------------------------------------------------------------- values
def L(mode, term, node=None):
    return LeaderId(term, node, std=(mode == "std"))


def V(mode, term, node=None, committed=False):
    return Vote(L(mode, term, node), committed)


def LID(mode, term, node, index):
    """A log id; in std mode it carries only the term (LogId drops the node)."""
    return LogId(L(mode, term, node), index)


def _kind(payload):
    if payload is None:
        return BLANK
    if isinstance(payload, Membership):
        return MEMBERSHIP
    return NORMAL


def make_log(mode, membership=None, entries=(), purged=None):
    """A LogBuffer: index 1 is `membership` written by initialize() (term 0), then `entries`,
    each (term, node, payload) with payload None for a blank entry or a Membership."""
    log = LogBuffer(purged)
    if membership is not None:
        log.append(L(mode, 0), [membership], MEMBERSHIP)
    for term, node, payload in entries:
        log.append(L(mode, term, node), [payload], _kind(payload))
    return log


def S(mode, start, *entries):
    """The LogSlice of `entries` ((term, node, payload) each) starting at index `start`."""
    return LogSlice.from_entries([Entry(LID(mode, t, n, start + i), p, _kind(p))
                                  for i, (t, n, p) in enumerate(entries)])


def config(mode, **kw):
    """A quiet config: no timers, no snapshots, no pre-vote (elections in one round); tests
    switch on what they exercise."""
    base = dict(enable_tick=False, snapshot_policy="never", leader_id_mode=mode, enable_pre_vote=False)
    base.update(kw)
    return Config(**base)


def new_engine(node_id, mode, *, voters=(1, 2, 3), membership=None, log=None, vote=None, committed=None,
               snapshot=None, applied=None, now=0.0, seed=0, startup=True, sync_log=False, **cfg):
    """An engine restarted from durable state; by default its log is the initialize() entry
    for `voters`, committed (and applied), and startup() has run (its output dropped).
    `sync_log`: its log store is durable when append returns (Engine(sync_log=True))."""
    if membership is None:
        membership = Membership(set(voters))
    if log is None:
        log = make_log(mode, membership)
    if committed is None and log.last_index >= 1 and log.first_index == 1 and log.kind_at(1) == MEMBERSHIP:
        committed = LID(mode, 0, None, 1)
    if applied is None:
        applied = committed
    state = PersistedState(vote=vote, log=log, committed=committed, snapshot=snapshot, applied=applied)
    e = Engine(node_id, config(mode, **cfg), state, random.Random(seed), now=now, sync_log=sync_log)
    if startup:
        e.startup()
    return e


# ---------------------------------------------------------------------------- responses
def ok_response(req, matched="last"):
    """The follower's OK to `req` (an AppendRequest), echoing its ids."""
    if matched == "last":
        matched = req.last_log_id
    return AppendResponse(req.vote, OK, matched, 0, -1, req.msg_id, req.seq, req.sent_at)


def conflict_response(req, hint_last=-1):
    return AppendResponse(req.vote, CONFLICT, None, req.prev_log_id.index, hint_last, req.msg_id, req.seq,
                          req.sent_at)


def sends_to(cmds, target, kind=Send):
    return [c for c in cmds if type(c) is kind and c.target == target]


def ack(e, target, cmds):
    """Feed the leader `e` the OK of every append `cmds` sent to `target`; returns the commands."""
    out = []
    for c in cmds:
        if type(c) in (Send, SendHeartbeat) and c.target == target and isinstance(c.msg, AppendRequest):
            out += e.recv_append_response(target, ok_response(c.msg))
    return out


def flush(e, cmds):
    """Report every AppendLog in `cmds` durable; returns the commands that produced."""
    out = []
    for c in cmds:
        if type(c) is AppendLog:
            out += e.on_log_flushed(c.entries.last_log_id)
    return out


def apply_all(e, cmds):
    """Report every Apply in `cmds` finished; returns the commands that produced."""
    out = []
    for c in cmds:
        if type(c) is Apply:
            out += e.on_applied(c.entries.last_log_id)
    return out


def settle(e, cmds, targets=None):
    """Leader `e`: flush its AppendLogs in `cmds`, have `targets` (default: every target)
    ack what `cmds` sent them, and apply what commits; returns every command produced."""
    out = flush(e, cmds)
    for t in sorted(e.tracker.progress if targets is None else targets):
        out += ack(e, t, cmds)
    return out + apply_all(e, out)


# ---------------------------------------------------------------------------- roles
_ENGINE_ARGS = {"voters", "membership", "log", "vote", "committed", "snapshot", "applied", "now", "seed", "startup",
                "sync_log"}


def restarted_out_of_lease(node_id, mode, voters, kw):
    """new_engine(...), except that a node restarted with another leader's committed vote is
    built one lease earlier and ticked to `now`: after a restart it keeps that leader's lease
    (it may have acked it just before), and these tests want it free to stand for election."""
    vote = kw.get("vote")
    if vote is None or not vote.committed or vote.leader_id.node_id == node_id:
        return new_engine(node_id, mode, voters=voters, **kw)
    kw = dict(kw)
    now = kw.pop("now", 0.0)
    lease = config(mode, **{k: v for k, v in kw.items() if k not in _ENGINE_ARGS}).lease
    e = new_engine(node_id, mode, voters=voters, now=now - lease - 0.001, **kw)
    e.tick(now)
    return e


def make_candidate(mode, node_id=1, voters=(1, 2, 3), **kw):
    """A follower that timed out: elect() sent its vote requests; no response yet."""
    e = restarted_out_of_lease(node_id, mode, voters, kw)
    e.elect()
    assert e.state == CANDIDATE
    return e


def elect_leader(mode, node_id=1, voters=(1, 2, 3), **kw):
    """elect() on a restarted node, then grants of the other voters (ascending) until it leads;
    returns (engine, commands of the winning grant)."""
    e = restarted_out_of_lease(node_id, mode, voters, kw)
    out = e.elect()
    last = e.last_log_id
    for v in sorted(set(voters) - {node_id}):
        if e.state == LEADER:
            break
        out = e.recv_vote_response(v, VoteResponse(e.vote, True, last))
    assert e.state == LEADER, e.state
    return e, out


def make_leader(mode, node_id=1, voters=(1, 2, 3), **kw):
    """A leader of term (saved term + 1), elected by the other voters' grants, whose blank
    entry is flushed, acked by every target, committed and applied: every target is
    streaming (REPLICATE) with an empty window."""
    e, out = elect_leader(mode, node_id, voters, **kw)
    settle(e, out)
    assert e.committed == e.last_log_id
    return e


def make_follower(mode, node_id=2, leader=1, term=1, voters=(1, 2, 3), *, entries=None, commit=True, now=0.0, **kw):
    """A follower of `leader` (term `term`) that accepted, flushed and acked the leader's first
    append (its blank entry, or `entries` (term, node, payload) after the initialize entry)."""
    e = new_engine(node_id, mode, voters=voters, now=now, **kw)
    if entries is None:
        entries = [(term, leader, None)]
    lv = V(mode, term, leader, committed=True)
    first = e.log.last_index + 1
    s = S(mode, first, *entries)
    req = AppendRequest(lv, e.last_log_id, s, s.last_log_id if commit else e.committed, 1, 1, int(now * 1e6))
    out = e.recv_append(leader, req)
    out += flush(e, out)
    apply_all(e, out)
    assert e.state == FOLLOWER and e.vote == lv and e.last_log_id == s.last_log_id
    return e
