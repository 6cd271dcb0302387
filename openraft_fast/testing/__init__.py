"""Test support for openraft_fast and for applications built on it. Which to use for what:

- `conformance`: run the LogStore / StateMachine contracts against your own store (subclass
  `LogStoreSuite` / `StateMachineSuite` under pytest).
- `sim`: the deterministic simulator: several engines, a seeded faulty network, crashes and
  restarts, invariants checked after every step (`python -m openraft_fast.testing.sim --help`).
  For protocol changes: run many seeds; a failing seed prints its replay line.
- `lincheck`: a linearizability checker for key-value histories (chaos tests feed it).
- `faultproxy`: a TCP proxy in front of each node's raft port that cuts, delays or isolates
  ordered pairs of real processes (partitions, bridges, one-way cuts).
- `faults`: an `os` module whose chosen calls fail (full disk, I/O errors) for the durable stores.
- Real processes on 127.0.0.1:
  - `serve_process`: one `openraft-fast serve` node (`ServeProcess`: start, SIGTERM, kill -9),
    CLI calls, free ports;
  - `localcluster`: a whole cluster of `serve` processes, optionally behind `faultproxy` (the
    chaos tests, the demo, the failover benchmark);
  - `node_runner`: a bare Raft node as a process driven by JSON lines on stdin (multi-process
    tests of the library without the KV service).
"""
