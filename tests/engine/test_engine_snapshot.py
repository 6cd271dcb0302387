"""Engine tests: snapshot policy, log purge, sending and installing snapshots."""
import random

from engine_helpers import (Engine, PersistedState, config, L, LID, V, Apply, AppendRequest, AppendResponse, BuildSnapshot,
                            InstallSnapshot, LogBuffer, Membership, OK, PurgeLog, Respond, S, SaveCommitted, SaveVote,
                            Send, SendSnapshot, TruncateLog, ack, conflict_response, elect_leader, flush, make_follower,
                            make_leader, make_log, settle)
from openraft_fast._core.messages import InstallSnapshotRequest, SnapshotMeta, SnapshotResponse
from openraft_fast._core.progress import STATE_REPLICATE, STATE_SNAPSHOT

M = Membership({1, 2, 3})


def meta_at(mode, term, node, index, sid="snap"):
    return SnapshotMeta(LID(mode, term, node, index), LID(mode, 0, None, 1), M, sid)


def follower_upto(mode, last, **kw):
    """Follower 2 of T1-N1 holding T1-N1 entries up to `last` (2 is the blank), flushed."""
    entries = [(1, 1, None)] + [(1, 1, "e%d" % i) for i in range(3, last + 1)]
    return make_follower(mode, entries=entries, **kw)


# ---------------------------------------------------------------------------- building
def test_snapshot_policy_builds_a_snapshot_after_n_applied_entries(mode):
    e = make_leader(mode, snapshot_policy=5)                 # applied up to 2
    out = e.client_write(["a", "b", "c", "d"])               # 3..6
    flush(e, out)
    ack(e, 2, out)
    assert e.on_applied(LID(mode, 1, 1, 4)) == []
    assert e.on_applied(LID(mode, 1, 1, 5)) == [BuildSnapshot()]
    # One build at a time.
    assert e.on_applied(LID(mode, 1, 1, 6)) == []
    # The count restarts from the snapshot.
    assert e.on_snapshot_built(meta_at(mode, 1, 1, 5)) == []
    assert e.snapshot == meta_at(mode, 1, 1, 5)
    out = e.client_write(["e", "f", "g", "h"])               # 7..10
    flush(e, out)
    ack(e, 2, out)
    assert e.on_applied(LID(mode, 1, 1, 9)) == []
    assert e.on_applied(LID(mode, 1, 1, 10)) == [BuildSnapshot()]


def test_snapshot_policy_never_builds_no_snapshot(mode):
    e = make_leader(mode)
    settle(e, e.client_write(["x"] * 20))
    assert e.on_applied(LID(mode, 1, 1, 22)) == []


def test_purge_keeps_max_in_snapshot_log_to_keep_entries(mode):
    e = follower_upto(mode, 10, max_in_snapshot_log_to_keep=3)
    assert e.applied == LID(mode, 1, 1, 10)
    assert e.on_snapshot_built(meta_at(mode, 1, 1, 10)) == [PurgeLog(LID(mode, 1, 1, 7))]
    assert e.log.first_index == 8 and e.last_log_id == LID(mode, 1, 1, 10)


def test_purge_never_goes_past_the_snapshot(mode):
    e = follower_upto(mode, 10, max_in_snapshot_log_to_keep=0)     # committed and applied 10
    # Without a snapshot nothing may be purged.
    assert e.purge_log(10) == [] and e.log.first_index == 1
    assert e.on_snapshot_built(meta_at(mode, 1, 1, 6)) == [PurgeLog(LID(mode, 1, 1, 6))]
    assert e.purge_log(10) == []
    assert e.log.first_index == 7


def test_purge_never_removes_what_an_inflight_stream_needs(mode):
    e = make_leader(mode, max_in_snapshot_log_to_keep=0)
    out = e.client_write(list("abcdefgh"))                   # 3..10
    settle(e, out, targets=[2])                              # 3 has not answered: matched 2
    assert e.applied == LID(mode, 1, 1, 10) and len(e.progress(3).inflight) == 1
    assert e.on_snapshot_built(meta_at(mode, 1, 1, 10)) == [PurgeLog(LID(mode, 1, 1, 2))]
    # Once 3 has everything, the rest can go.
    assert ack(e, 3, out) == []
    assert e.purge_log(10) == [PurgeLog(LID(mode, 1, 1, 10))]


# ---------------------------------------------------------------------------- sending
def leader_with_purged_log(mode):
    """Leader 1 of T2 whose log was purged up to T1-N2.10 (snapshot at 10) and holds 11..12."""
    log = LogBuffer(LID(mode, 1, 2, 10))
    log.append(L(mode, 1, 2), ["k", "l"])
    return elect_leader(mode, vote=V(mode, 1, 2, True), log=log, snapshot=meta_at(mode, 1, 2, 10),
                        committed=LID(mode, 1, 2, 12), applied=LID(mode, 1, 2, 12))


def test_leader_sends_snapshot_when_the_follower_needs_purged_entries(mode):
    e, out = leader_with_purged_log(mode)
    lv = V(mode, 2, 1, True)
    # Follower 2 holds only up to 5; entries 6..10 are purged.
    out = e.recv_append_response(2, conflict_response(out[2].msg, hint_last=5))
    assert out == [SendSnapshot(2, InstallSnapshotRequest(lv, meta_at(mode, 1, 2, 10), None, 2, 3, 0))]
    assert e.progress(2).state == STATE_SNAPSHOT


def test_leader_streams_logs_after_the_snapshot_is_installed(mode):
    e, out = leader_with_purged_log(mode)
    lv = V(mode, 2, 1, True)
    e.recv_append_response(2, conflict_response(out[2].msg, hint_last=5))
    out = e.recv_snapshot_response(2, SnapshotResponse(lv, True, 2, 3, 0))
    assert out == [Send(2, AppendRequest(lv, LID(mode, 1, 2, 10), S(mode, 11, (1, 2, "k"), (1, 2, "l"), (2, 1, None)),
                                         LID(mode, 1, 2, 12), 3, 4, 0))]
    assert e.progress(2).state == STATE_REPLICATE and e.progress(2).matched == 10


def test_leader_sends_snapshot_to_a_follower_lagging_more_than_the_threshold(mode):
    def leader(**kw):
        # Full log 1..12 of T1-N2 (nothing purged) and a snapshot at 10.
        log = make_log(mode, M, [(1, 2, None)] + [(1, 2, "e%d" % i) for i in range(3, 13)])
        return elect_leader(mode, vote=V(mode, 1, 2, True), log=log, snapshot=meta_at(mode, 1, 2, 10),
                            committed=LID(mode, 1, 2, 12), applied=LID(mode, 1, 2, 12), **kw)

    lv = V(mode, 2, 1, True)
    # Follower 2 holds only up to 2: the next probe would start 8 entries behind the snapshot.
    e, out = leader(replication_lag_threshold=5)
    assert e.recv_append_response(2, conflict_response(out[2].msg, hint_last=2)) == [
        SendSnapshot(2, InstallSnapshotRequest(lv, meta_at(mode, 1, 2, 10), None, 2, 3, 0))]
    # Within the threshold, the log is sent.
    e, out = leader(replication_lag_threshold=8)
    out = e.recv_append_response(2, conflict_response(out[2].msg, hint_last=2))
    assert [type(c) for c in out] == [Send] and out[0].msg.prev_log_id == LID(mode, 1, 2, 2)


# ---------------------------------------------------------------------------- installing
def test_follower_install_with_conflicting_log_installs_then_truncates_then_purges(mode):
    e = follower_upto(mode, 10, commit=False)                # T1-N1 up to 10, committed 1
    nv = V(mode, 2, 3, True)
    meta = meta_at(mode, 2, 3, 8)                            # our entry 8 is T1-N1's: conflict
    out = e.recv_snapshot(3, InstallSnapshotRequest(nv, meta, b"state", 4, 9, 123))
    # The snapshot is durable before any entry goes: a crash in between loses nothing acked.
    assert out == [SaveVote(nv), InstallSnapshot(meta, b"state"), TruncateLog(7), PurgeLog(LID(mode, 2, 3, 8)),
                   SaveCommitted(LID(mode, 2, 3, 8))]
    assert e.last_log_id == LID(mode, 2, 3, 8) and e.log.first_index == 9
    assert e.committed == LID(mode, 2, 3, 8) and e.snapshot == meta


def test_follower_install_replaces_an_uncommitted_membership_of_a_conflicting_log(mode):
    e = follower_upto(mode, 3, commit=False)
    lv = V(mode, 1, 1, True)
    joint = Membership([{1, 2, 3}, {1, 2}])
    e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 3), S(mode, 4, (1, 1, joint)), None, 2, 2, 0))
    assert e.membership == joint
    nv = V(mode, 2, 3, True)
    meta = meta_at(mode, 2, 3, 8)
    e.recv_snapshot(3, InstallSnapshotRequest(nv, meta, b"state", 1, 1, 0))
    assert e.membership == M and e.membership_log_id == LID(mode, 0, None, 1)
    assert e.committed_membership == M


def test_follower_install_with_matching_log_keeps_entries_after_the_snapshot(mode):
    e = follower_upto(mode, 6, commit=False)
    lv = V(mode, 1, 1, True)
    meta = meta_at(mode, 1, 1, 4)
    out = e.recv_snapshot(1, InstallSnapshotRequest(lv, meta, b"state", 2, 5, 0))
    assert out == [InstallSnapshot(meta, b"state"), PurgeLog(LID(mode, 1, 1, 4)), SaveCommitted(LID(mode, 1, 1, 4))]
    assert e.log.first_index == 5 and e.last_log_id == LID(mode, 1, 1, 6)
    assert e.log.payload_at(6) == "e6"
    # Apply resumes right after the snapshot.
    e.on_snapshot_installed(meta)
    out = e.recv_append(1, AppendRequest(lv, LID(mode, 1, 1, 6), None, LID(mode, 1, 1, 6), 0, 6, 0))
    assert out == [SaveCommitted(LID(mode, 1, 1, 6)), Apply(S(mode, 5, (1, 1, "e5"), (1, 1, "e6"))),
                   Respond(1, AppendResponse(lv, OK, LID(mode, 1, 1, 6), 0, -1, 0, 6, 0))]


def test_snapshot_response_is_sent_once_the_snapshot_is_installed(mode):
    e = follower_upto(mode, 3, commit=False)
    nv = V(mode, 2, 3, True)
    meta = meta_at(mode, 2, 3, 8)
    out = e.recv_snapshot(3, InstallSnapshotRequest(nv, meta, b"state", 4, 9, 123))
    assert not [c for c in out if isinstance(c, Respond)]
    assert e.on_snapshot_installed(meta) == [Respond(3, SnapshotResponse(nv, True, 4, 9, 123))]
    assert e.applied == LID(mode, 2, 3, 8)
    assert e.on_snapshot_installed(meta) == []


def test_snapshot_already_covered_by_the_commit_is_acked_at_once(mode):
    e = follower_upto(mode, 6)                               # committed 6
    lv = V(mode, 1, 1, True)
    out = e.recv_snapshot(1, InstallSnapshotRequest(lv, meta_at(mode, 1, 1, 5), b"x", 3, 7, 0))
    assert out == [Respond(1, SnapshotResponse(lv, True, 3, 7, 0))]
    assert e.snapshot is None and e.log.first_index == 1


def test_snapshot_from_a_smaller_vote_is_refused(mode):
    e = follower_upto(mode, 3)
    old = V(mode, 0, 3, True)
    out = e.recv_snapshot(3, InstallSnapshotRequest(old, meta_at(mode, 0, 3, 8), b"x", 1, 1, 0))
    assert out == [Respond(3, SnapshotResponse(V(mode, 1, 1, True), False, 1, 1, 0))]
    assert e.snapshot is None and e.last_log_id == LID(mode, 1, 1, 3)


def test_restart_finds_the_snapshot_past_its_log_and_resets_the_log(mode):
    # A crash after InstallSnapshot but before the log was purged: the snapshot is durable,
    # the log does not hold its last entry. The snapshot wins; the store is told to follow.
    log = make_log(mode, Membership({1, 2, 3}), [(1, 1, None), (1, 1, "a")])
    meta = meta_at(mode, 2, 3, 8)
    state = PersistedState(vote=V(mode, 2, 3, True), log=log, committed=LID(mode, 1, 1, 3), snapshot=meta,
                           applied=LID(mode, 2, 3, 8))
    e = Engine(1, config(mode), state, random.Random(0))
    assert e.startup() == [PurgeLog(LID(mode, 2, 3, 8))]
    assert e.last_log_id == LID(mode, 2, 3, 8) and e.log.first_index == 9
    assert e.committed == LID(mode, 2, 3, 8)
