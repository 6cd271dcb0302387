"""Engine tests of engine_replication.pxi: log replication, leader side (probe, bisect, stream,
pipeline), and heartbeats, retransmission and the timers driven by tick()."""
import pytest

from engine_helpers import (CONFLICT, HIGHER_VOTE, LID, OK, S, V, AppendLog, AppendRequest, AppendResponse, Membership,
                            Node, Respond, SaveVote, Send, SendHeartbeat, conflict_response, elect_leader,
                            make_follower, make_leader, make_log, ok_response, sends_to)
from openraft_fast._core.engine import CANDIDATE, FOLLOWER
from openraft_fast._core.progress import STATE_PROBE, STATE_REPLICATE


def lagging_leader(mode, **kw):
    """Node 1 elected leader of T2; its log: the initialize entry (committed), T1-N2 entries
    2..5 (not known to be committed), then its own blank T2-N1.6.
    Returns (engine, commands of the election)."""
    log = make_log(mode, Membership({1, 2, 3}), [(1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c")])
    return elect_leader(mode, vote=V(mode, 1, 2, True), log=log, **kw)


# ---------------------------------------------------------------------------- leader: probing
def test_new_leader_first_probe_is_at_its_last_log_id_and_carries_its_blank_entry(mode):
    e, out = lagging_leader(mode)
    lv = V(mode, 2, 1, True)
    blank = S(mode, 6, (2, 1, None))
    assert out == [
        SaveVote(lv),
        AppendLog(blank),
        Send(2, AppendRequest(lv, LID(mode, 1, 2, 5), blank, LID(mode, 0, None, 1), 1, 1, 0)),
        Send(3, AppendRequest(lv, LID(mode, 1, 2, 5), blank, LID(mode, 0, None, 1), 1, 2, 0)),
    ]
    # One probe at a time: nothing more goes out until it is answered.
    assert e.progress(2).state == STATE_PROBE and len(e.progress(2).inflight) == 1


def test_first_probe_to_a_new_target_is_empty_at_the_leaders_last_log_id(mode):
    e = make_leader(mode)
    out = e.add_learner(4, Node("n4"))
    lv = V(mode, 1, 1, True)
    m = Membership({1, 2, 3}, nodes={1: Node(), 2: Node(), 3: Node(), 4: Node("n4")})
    entry = S(mode, 3, (1, 1, m))
    assert out == [
        AppendLog(entry),
        Send(2, AppendRequest(lv, LID(mode, 1, 1, 2), entry, LID(mode, 1, 1, 2), 2, 3, 0)),
        Send(3, AppendRequest(lv, LID(mode, 1, 1, 2), entry, LID(mode, 1, 1, 2), 2, 4, 0)),
        Send(4, AppendRequest(lv, LID(mode, 1, 1, 3), None, LID(mode, 1, 1, 2), 1, 5, 0)),
    ]


def test_leader_uses_the_conflict_hint_then_streams(mode):
    e, out = lagging_leader(mode)
    probe = out[2].msg
    # Follower 2 holds only up to index 3: it rejects prev 5 and tells its last index.
    out = e.recv_append_response(2, conflict_response(probe, hint_last=3))
    lv = V(mode, 2, 1, True)
    rest = S(mode, 4, (1, 2, "b"), (1, 2, "c"), (2, 1, None))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 1, 2, 3), rest, LID(mode, 0, None, 1), 2, 3, 0))]
    assert e.progress(2).state == STATE_PROBE
    # The match is found: the target streams from there.
    assert e.recv_append_response(2, ok_response(out[0].msg)) == []
    p = e.progress(2)
    assert p.state == STATE_REPLICATE and p.matched == 6 and p.next_index == 7


def test_leader_bisects_the_log_without_a_hint(mode):
    e, out = lagging_leader(mode)
    lv = V(mode, 2, 1, True)
    commit = LID(mode, 0, None, 1)
    # Follower 2's entry at 5 is from another leader (no hint): search [0, 4], try the middle, 2.
    out = e.recv_append_response(2, conflict_response(out[2].msg))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 1, 2, 2),
                                         S(mode, 3, (1, 2, "a"), (1, 2, "b"), (1, 2, "c"), (2, 1, None)),
                                         commit, 2, 3, 0))]
    # Its entry at 2 differs too: search [0, 1], try 1.
    out = e.recv_append_response(2, conflict_response(out[0].msg))
    whole = S(mode, 2, (1, 2, None), (1, 2, "a"), (1, 2, "b"), (1, 2, "c"), (2, 1, None))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 0, None, 1), whole, commit, 3, 4, 0))]
    assert e.recv_append_response(2, ok_response(out[0].msg)) == []
    assert e.progress(2).matched == 6 and e.progress(2).state == STATE_REPLICATE


def test_leader_pipelines_up_to_max_inflight_messages_of_max_payload_entries(mode):
    e = make_leader(mode, max_payload_entries=2, max_inflight=3)
    lv = V(mode, 1, 1, True)
    commit = LID(mode, 1, 1, 2)
    payloads = list("abcdefgh")                       # indexes 3..10
    out = e.client_write(payloads)

    def part(i):
        return S(mode, i, (1, 1, payloads[i - 3]), (1, 1, payloads[i - 2]))

    assert out == [AppendLog(S(mode, 3, *[(1, 1, p) for p in payloads]))] + [
        Send(t, AppendRequest(lv, LID(mode, 1, 1, i - 1), part(i), commit, msg, seq, 0))
        for t, base in ((2, 3), (3, 6)) for msg, (i, seq) in enumerate(zip((3, 5, 7), range(base, base + 3)), 2)]
    assert len(e.progress(2).inflight) == 3
    # An ack frees one slot: the next message goes out at once.
    out2 = e.recv_append_response(2, ok_response(out[1].msg))
    assert out2 == [Send(2, AppendRequest(lv, LID(mode, 1, 1, 8), part(9), commit, 5, 9, 0))]


def test_duplicated_append_response_is_ignored(mode):
    e = make_leader(mode, max_payload_entries=2, max_inflight=3)
    out = e.client_write(list("abcdefgh"))
    first = out[1].msg
    e.recv_append_response(2, ok_response(first))
    p = e.progress(2)
    before = (p.state, p.matched, p.next_index, p.inflight.items(), e.committed)
    assert e.recv_append_response(2, ok_response(first)) == []
    assert (p.state, p.matched, p.next_index, p.inflight.items(), e.committed) == before


def test_stale_append_response_of_a_reset_window_is_ignored(mode):
    e = make_leader(mode, max_payload_entries=2, max_inflight=3)
    out = e.client_write(list("abcdefgh"))
    sent = [c.msg for c in out if isinstance(c, Send) and c.target == 2]
    # The first message is rejected: the window is reset and a probe goes out.
    e.recv_append_response(2, conflict_response(sent[0], hint_last=2))
    p = e.progress(2)
    before = (p.state, p.matched, p.next_index, p.searching_end, p.inflight.items())
    # Late answers to the messages sent before the reset change nothing.
    assert e.recv_append_response(2, ok_response(sent[2])) == []
    assert e.recv_append_response(2, conflict_response(sent[1])) == []
    assert (p.state, p.matched, p.next_index, p.searching_end, p.inflight.items()) == before


def test_append_response_of_a_previous_leadership_is_ignored(mode):
    e = make_leader(mode, vote=V(mode, 1, 2, True))     # leads T2
    e.client_write(["x"])
    old = AppendResponse(V(mode, 1, 2, True), OK, LID(mode, 0, None, 1), 0, -1, 2, 3, 0)
    assert e.recv_append_response(2, old) == []
    assert e.progress(2).matched == 2


def test_leader_steps_down_on_a_higher_vote_append_response(mode):
    e = make_leader(mode)
    out = e.client_write(["x"])
    higher = V(mode, 2, 3, True)
    resp = AppendResponse(higher, HIGHER_VOTE, None, 0, -1, out[1].msg.msg_id, out[1].msg.seq, 0)
    assert e.recv_append_response(2, resp) == [SaveVote(higher)]
    assert e.state == FOLLOWER and e.vote == higher and e.tracker is None
    # A higher vote in an OK / CONFLICT answer (a follower that moved on) works the same way.
    e2 = make_leader(mode)
    out = e2.client_write(["x"])
    resp = AppendResponse(V(mode, 3, 2), CONFLICT, None, 2, -1, out[1].msg.msg_id, out[1].msg.seq, 0)
    assert e2.recv_append_response(2, resp) == [SaveVote(V(mode, 3, 2))]
    assert e2.state == FOLLOWER


# ---------------------------------------------------------------------------- heartbeats, retransmission and timers
def ticking_leader(mode, **kw):
    return make_leader(mode, now=1.0, enable_tick=True, **kw)


def test_leader_sends_heartbeats_at_heartbeat_interval_on_tick(mode):
    e = ticking_leader(mode)
    lv = V(mode, 1, 1, True)
    assert e.next_deadline == 1.05
    assert e.tick(1.049) == []
    out = e.tick(1.05)
    c = LID(mode, 1, 1, 2)
    assert out == [SendHeartbeat(2, AppendRequest(lv, c, None, c, 0, 3, 1_050_000)),
                   SendHeartbeat(3, AppendRequest(lv, c, None, c, 0, 4, 1_050_000))]
    assert e.next_deadline == 1.1
    assert e.tick(1.07) == []


def test_heartbeats_are_their_own_command_type_and_carry_no_entries(mode):
    e = ticking_leader(mode)
    e.client_write(["a"])                           # in flight, not acked
    out = e.tick(1.05)
    assert [type(c) for c in out] == [SendHeartbeat, SendHeartbeat]
    for c in out:
        assert not isinstance(c, Send)
        assert c.msg.entries is None and c.msg.msg_id == 0
        # prev is what the target is known to hold, not the leader's last entry.
        assert c.msg.prev_log_id == LID(mode, 1, 1, 2)


def test_no_heartbeats_when_disabled(mode):
    e = ticking_leader(mode, enable_heartbeat=False)
    assert e.tick(5.0) == []


def test_heartbeat_response_updates_the_lease_but_not_the_progress_window(mode):
    e = ticking_leader(mode)
    out = e.client_write(["a"])                     # msg 2 to target 2 carries entry 3
    hb = e.tick(1.14)                               # heartbeats; the lease (from 1.0) ran out at 1.135
    assert e.lease_valid_until == pytest.approx(1.135)
    (beat,) = sends_to(hb, 2, SendHeartbeat)
    # Even if the heartbeat's answer claims more, it moves neither matched nor the window.
    resp = AppendResponse(beat.msg.vote, OK, LID(mode, 1, 1, 3), 0, -1, 0, beat.msg.seq, beat.msg.sent_at)
    assert e.recv_append_response(2, resp) == []
    p = e.progress(2)
    assert p.matched == 2 and len(p.inflight) == 1
    assert e.committed == LID(mode, 1, 1, 2)
    assert e.lease_valid_until == pytest.approx(1.14 + 0.135)
    # The real answer to the append still moves the window.
    e.recv_append_response(2, ok_response(out[1].msg))
    assert p.matched == 3 and len(p.inflight) == 0


def test_leader_reprobes_a_stalled_window_on_a_heartbeat_tick(mode):
    e = ticking_leader(mode)
    lv = V(mode, 1, 1, True)
    e.client_write(["a"])                           # to 2 and 3 at 1.0; never answered
    assert [type(c) for c in e.tick(1.15)] == [SendHeartbeat, SendHeartbeat]
    out = e.tick(1.2)                               # stalled for more than election_timeout_min
    c = LID(mode, 1, 1, 2)
    probe = AppendRequest(lv, LID(mode, 1, 1, 3), None, c, 3, 0, 1_200_000)
    assert out == [
        SendHeartbeat(2, AppendRequest(lv, c, None, c, 0, 7, 1_200_000)),
        SendHeartbeat(3, AppendRequest(lv, c, None, c, 0, 8, 1_200_000)),
        Send(2, AppendRequest(lv, probe.prev_log_id, None, c, 3, 9, 1_200_000)),
        Send(3, AppendRequest(lv, probe.prev_log_id, None, c, 3, 10, 1_200_000)),
    ]
    assert e.progress(2).state == STATE_PROBE


def test_follower_heartbeat_resets_the_election_timer(mode):
    e = make_follower(mode, now=1.0, enable_tick=True)
    lv = V(mode, 1, 1, True)
    e.tick(1.1)
    c = LID(mode, 1, 1, 2)
    assert e.recv_append(1, AppendRequest(lv, c, None, c, 0, 5, 1_100_000)) == [
        Respond(1, AppendResponse(lv, OK, c, 0, -1, 0, 5, 1_100_000))]
    assert 1.25 <= e.next_deadline <= 1.4
    assert e.tick(1.249) == [] and e.state == FOLLOWER
    out = e.tick(1.41)
    assert e.state == CANDIDATE and out
