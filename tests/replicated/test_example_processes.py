"""The docs' example (examples/lock_counter.py) in three real processes over TCP, each with its
own WAL: increments from every node while the leader is killed with SIGKILL. Every increment
acknowledged is counted once, increments with an unknown outcome at most once, and the
survivors go on under a new leader."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from openraft_fast.testing.serve_process import free_ports

DRIVER = Path(__file__).with_name("drive_node.py")
INCREMENTS = 60


class Proc:
    def __init__(self, i, peers, data_dir):
        self.id = i
        self.p = subprocess.Popen([sys.executable, str(DRIVER), str(i), peers, str(data_dir), str(INCREMENTS)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, bufsize=1)
        self.lines = []

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def read(self, key, timeout=30.0):
        """The next line with `key`; earlier lines are kept."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError(f"node {self.id} exited (code {self.p.poll()}); lines {self.lines[-5:]}")
            msg = json.loads(line)
            self.lines.append(msg)
            if key in msg:
                return msg
        raise AssertionError(f"node {self.id}: no {key!r} within {timeout}s")

    def results(self):
        return [m for m in self.lines if "incr" in m or "error" in m]


def test_increments_through_a_leader_kill(tmp_path):
    ports = free_ports(3)
    peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in zip((1, 2, 3), ports))
    procs = {i: Proc(i, peers, tmp_path / f"n{i}") for i in (1, 2, 3)}
    try:
        for p in procs.values():
            p.read("up")
        for p in procs.values():
            p.send("go")
        # some acknowledged increments everywhere, then kill the leader
        for p in procs.values():
            p.read("incr")
        procs[1].send("leader")
        leader = procs[1].read("leader")["leader"]
        assert leader in procs
        os.kill(procs[leader].p.pid, signal.SIGKILL)
        procs[leader].p.wait(10)
        survivors = [p for i, p in procs.items() if i != leader]
        for p in survivors:
            p.read("done", timeout=60)
        dead_lines = procs[leader].p.stdout.read().splitlines()
        procs[leader].lines += [json.loads(x) for x in dead_lines if x.startswith("{")]
        survivors[0].send("value")
        value = survivors[0].read("value")["value"]

        acked = [m["incr"] for p in procs.values() for m in p.results() if "incr" in m]
        unknown = [m for p in procs.values() for m in p.results() if m.get("error") == "OutcomeUnknown"]
        other = [m for p in survivors for m in p.results() if "error" in m and m["error"] != "OutcomeUnknown"]
        assert len(acked) == len(set(acked)), "an increment result was returned twice"
        # the killed process had at most one increment in flight (its calls are sequential): it
        # may have applied, and no one reports its outcome
        assert len(acked) <= value <= len(acked) + len(unknown) + 1
        assert max(acked) <= value
        # the survivors finished their increments, nearly all acknowledged
        survivor_acks = sum(1 for p in survivors for m in p.results() if "incr" in m)
        assert survivor_acks >= 2 * INCREMENTS - 4 - len(other), (survivor_acks, other, unknown)
        survivors[1].send("leader")
        assert survivors[1].read("leader")["leader"] in (survivors[0].id, survivors[1].id)
        for p in survivors:
            p.send("quit")
            assert p.p.wait(30) == 0
    finally:
        for p in procs.values():
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
