"""Engine tests of sync_log (engine_append.pxi `_appended`): a log store that is durable when
append returns lets the engine handle an AppendLog's flush in the event that emitted it, so a
write costs no on_log_flushed events. The decisions must be those of a store that reports the
flush right after the event: same commands, same state."""
import random

from engine_helpers import (LID, OK, S, V, AppendLog, AppendRequest, AppendResponse, Apply, Respond, SaveCommitted,
                            SaveVote, Send, TruncateLog, config, flush, make_follower, make_leader, ok_response)
from openraft_fast._core.engine import LEADER, Engine, PersistedState
from openraft_fast._core.messages import AppendResponse as AppendResponseType
from openraft_fast._core.messages import VoteRequest, VoteResponse
from openraft_fast._core.types import Membership


def test_follower_with_sync_log_acks_and_commits_in_the_append_event(mode):
    e = make_follower(mode, sync_log=True)          # holds T1-N1.2, committed
    lv = V(mode, 1, 1, True)
    req = AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (1, 1, "a"), (1, 1, "b")), LID(mode, 1, 1, 3), 3, 5, 77)
    assert e.recv_append(1, req) == [
        AppendLog(S(mode, 3, (1, 1, "a"), (1, 1, "b"))),
        SaveCommitted(LID(mode, 1, 1, 3)),
        Apply(S(mode, 3, (1, 1, "a"))),
        Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 4), 0, -1, 3, 5, 77)),
    ]
    assert e.flushed == LID(mode, 1, 1, 4) and e.committed == LID(mode, 1, 1, 3)
    # A flush report for it (a store that calls on_flushed anyway) changes nothing.
    assert e.on_log_flushed(LID(mode, 1, 1, 4)) == []


def test_follower_with_sync_log_truncating_a_conflict_is_flushed_up_to_the_new_entries(mode):
    e = make_follower(mode, entries=[(1, 1, None), (1, 1, "a"), (1, 1, "b")], commit=False, sync_log=True)
    lv = V(mode, 2, 3, True)
    req = AppendRequest(lv, LID(mode, 1, 1, 2), S(mode, 3, (2, 3, "x")), None, 1, 1, 0)
    assert e.recv_append(3, req) == [
        SaveVote(lv), TruncateLog(2), AppendLog(S(mode, 3, (2, 3, "x"))),
        Respond(3, AppendResponse(lv, OK, LID(mode, 2, 3, 3), 0, -1, 1, 1, 0)),
    ]
    assert e.flushed == LID(mode, 2, 3, 3) and e.last_log_id == LID(mode, 2, 3, 3)


def test_leader_with_sync_log_counts_its_own_entry_as_accepted_when_it_appends(mode):
    e = make_leader(mode, sync_log=True)            # T1-N1.2 committed
    out = e.client_write([b"x"])
    assert [type(c) for c in out] == [AppendLog, Send, Send]
    assert e.flushed == LID(mode, 1, 1, 3) and e.committed == LID(mode, 1, 1, 2)
    # One follower's ack is a majority with the leader's own durable entry: no flush event.
    assert e.recv_append_response(2, ok_response(out[1].msg)) == [
        SaveCommitted(LID(mode, 1, 1, 3)), Apply(S(mode, 3, (1, 1, b"x")))]


def test_single_voter_with_sync_log_commits_a_write_in_the_write_event(mode):
    e = Engine(1, config(mode), PersistedState(), random.Random(1), sync_log=True)
    init = e.initialize(Membership({1}))
    assert e.state == LEADER and e.committed == LID(mode, 1, 1, 2)     # its blank entry, at once
    assert init[-2:] == [SaveCommitted(LID(mode, 1, 1, 2)), Apply(S(mode, 1, (0, None, Membership({1})),
                                                                        (1, 1, None)))]
    assert e.client_write([b"y"]) == [
        AppendLog(S(mode, 3, (1, 1, b"y"))), SaveCommitted(LID(mode, 1, 1, 3)), Apply(S(mode, 3, (1, 1, b"y")))]


# ---------------------------------------------------------------------------- lockstep
def _run(cmds, engine, sync):
    """The commands of one event as a store that is durable on append sees them: inline
    (sync_log) or with the flush reported right after the event."""
    return cmds if sync else cmds + flush(engine, cmds)


def _cluster(mode, sync, seed):
    cfg = config(mode, max_payload_entries=3, max_inflight=4)
    nodes = {i: Engine(i, cfg, PersistedState(), random.Random(seed * 10 + i), sync_log=sync) for i in (1, 2, 3)}
    wire = []
    for i, e in nodes.items():
        _route(wire, i, _run(e.initialize(Membership({1, 2, 3}), elect=(i == 1)), e, sync))
    return nodes, wire


def _route(wire, src, cmds):
    for c in cmds:
        if type(c).__name__ in ("Send", "SendHeartbeat", "Respond"):
            wire.append((src, c.target, c.msg))


def _deliver(e, src, msg):
    if isinstance(msg, AppendRequest):
        return e.recv_append(src, msg)
    if isinstance(msg, AppendResponseType):
        return e.recv_append_response(src, msg)
    if isinstance(msg, VoteRequest):
        return e.recv_vote(src, msg)
    if isinstance(msg, VoteResponse):
        return e.recv_vote_response(src, msg)
    return []


def _decisions(cmds):
    """What an event decided: the messages and log writes, the indices applied, the last
    committed id saved. A fused flush may commit in one step what a fed one commits in two
    (up to the old flush, then the rest): the same decision, fewer commands."""
    kept = sorted(repr(c) for c in cmds if type(c) not in (Apply, SaveCommitted))
    applied = [i for c in cmds if type(c) is Apply for i in range(c.entries.start, c.entries.stop)]
    saved = [c.log_id for c in cmds if type(c) is SaveCommitted]
    return kept, applied, saved[-1:]


def _state(nodes):
    return {i: (e.state, e.vote, e.last_log_id, e.flushed, e.committed) for i, e in nodes.items()}


def test_sync_log_makes_the_decisions_of_a_store_that_reports_each_flush_at_once(mode):
    """Two clusters in lockstep over random schedules (writes, reordered and lost messages,
    heartbeats): one with sync_log, one fed on_log_flushed right after each event. After every
    event both hold the same state and made the same decisions (_decisions)."""
    committed = []
    for seed in range(40):
        rng = random.Random(seed)
        clusters = [_cluster(mode, True, seed), _cluster(mode, False, seed)]
        for step in range(300):
            (a, wire_a), (b, wire_b) = clusters
            assert [(s, d, repr(m)) for s, d, m in wire_a] == [(s, d, repr(m)) for s, d, m in wire_b]
            leader = next((i for i, e in a.items() if e.state == LEADER), None)
            r = rng.random()
            if leader is not None and r < 0.3:
                payloads = [bytes([step % 256])] * rng.randint(1, 3)
                node, event = leader, (lambda e, wire: e.client_write(payloads))
            elif leader is not None and r < 0.35:
                node, event = leader, (lambda e, wire: e.trigger_heartbeat())
            elif wire_a:
                k = rng.randrange(len(wire_a))
                # Appends and their answers are lost at times (vote traffic is not: no
                # timers here to stand again).
                node = wire_a[k][1]
                lost = rng.random() < 0.1 and isinstance(wire_a[k][2], (AppendRequest, AppendResponseType))

                def event(e, wire, k=k, lost=lost):
                    src, _, msg = wire.pop(k)
                    return [] if lost else _deliver(e, src, msg)
            else:
                break
            outs = []
            for sync, (nodes, wire) in zip((True, False), clusters):
                out = _run(event(nodes[node], wire), nodes[node], sync)
                _route(wire, node, out)
                outs.append(_decisions(out))
            assert outs[0] == outs[1], (seed, step)
            assert _state(a) == _state(b), (seed, step)
        committed.append(clusters[0][0][1].committed.index)
    assert sorted(committed)[20] > 20, committed      # most schedules commit many writes (a lost append stalls some)
