"""Per-event engine cost (issue: the Raft engine).

- leader: one AppendResponse that advances the commit index (3 voters), with the Apply it emits;
- follower: one AppendRequest of 64 entries, plus the flush event that releases its ack.
Each benchmark also checks the engine did the work (commit advanced / entries appended).
"""
import random

import pytest

from openraft_fast._core.engine import Engine, PersistedState
from openraft_fast._core.types import Membership
from openraft_fast.config import Config

CFG = Config(snapshot_policy="never", max_inflight=1 << 20, max_payload_entries=64, enable_tick=False)


def leader_and_followers():
    """Node 1 leads {1, 2, 3}; nodes 2 and 3 follow with the whole log. Storage and network
    complete instantly."""
    nodes = {i: Engine(i, CFG, PersistedState(), random.Random(i)) for i in (1, 2, 3)}
    queue = [(1, cmd) for cmd in nodes[1].initialize(Membership({1, 2, 3}))]
    while queue:
        src, cmd = queue.pop(0)
        name = type(cmd).__name__
        if name == "AppendLog":
            queue += [(src, c) for c in nodes[src].on_log_flushed(cmd.entries.last_log_id)]
        elif name in ("Send", "SendHeartbeat", "Respond"):
            queue += [(cmd.target, c) for c in _deliver(nodes[cmd.target], src, cmd.msg)]
    assert nodes[1].is_leader()
    return nodes


def _deliver(engine, src, msg):
    """Handle one message; flush its appends at once; return the other commands."""
    kind = type(msg).__name__
    handler = {"VoteRequest": engine.recv_vote, "VoteResponse": engine.recv_vote_response,
               "AppendRequest": engine.recv_append, "AppendResponse": engine.recv_append_response}[kind]
    out = []
    for cmd in handler(src, msg):
        if type(cmd).__name__ == "AppendLog":
            out += engine.on_log_flushed(cmd.entries.last_log_id)
        else:
            out.append(cmd)
    return out


@pytest.mark.benchmark(group="engine-event")
def test_leader_handles_append_response_and_commits(benchmark):
    nodes = leader_and_followers()
    leader, follower = nodes[1], nodes[2]
    state = {}

    def setup():
        cmds = leader.client_write([b"x"])
        req = next(c.msg for c in cmds if type(c).__name__ == "Send" and c.target == 2)
        for c in cmds:
            if type(c).__name__ == "AppendLog":
                leader.on_log_flushed(c.entries.last_log_id)
        resp = next(c.msg for c in _deliver(follower, 1, req) if type(c).__name__ == "Respond")
        state["before"] = leader.committed.index
        return (2, resp), {}

    benchmark.pedantic(leader.recv_append_response, setup=setup, rounds=20000, iterations=1, warmup_rounds=100)
    assert leader.committed.index == state["before"] + 1


@pytest.mark.benchmark(group="engine-event")
def test_follower_handles_append_of_64_entries(benchmark):
    nodes = leader_and_followers()
    leader, follower = nodes[1], nodes[2]
    payloads = [b"x" * 16] * 64
    state = {}

    def setup():
        cmds = leader.client_write(payloads)
        req = next(c.msg for c in cmds if type(c).__name__ == "Send" and c.target == 2)
        assert len(req.entries) == 64
        state["stop"] = req.entries.stop
        return (req,), {}

    def handle(req):
        out = follower.recv_append(1, req)
        return out + follower.on_log_flushed(req.entries.last_log_id)

    benchmark.pedantic(handle, setup=setup, rounds=5000, iterations=1, warmup_rounds=50)
    assert follower.log.last_index == state["stop"] - 1
