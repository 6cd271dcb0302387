"""Engine tests: heartbeats, retransmission and the timers driven by tick()."""
import pytest

from engine_helpers import (LID, V, AppendRequest, AppendResponse, OK, Respond, Send, SendHeartbeat, make_follower,
                            make_leader, ok_response, sends_to)
from openraft_fast._core.engine import CANDIDATE, FOLLOWER
from openraft_fast._core.progress import STATE_PROBE


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
