"""PySyncObj side by side in benchmark B3 (`openraft-fast bench --transport tcp --peer pysyncobj`).

A 3-process PySyncObj cluster (PySyncObj's own TCP transport, its autoTick thread) replicating a
counter through one `@replicated` method; node 1 lives in the bench process, is made the leader
(its followers get long election timeouts, nothing else changes) and takes the writes, which
`run_load` drives through the same `client_write` API as our Raft: each write is PySyncObj's
async call with a callback that resolves an asyncio future. Two configurations: PySyncObj's
defaults (`pysyncobj`: commands batched on its tick, so latency follows the tick period) and
`appendEntriesUseBatch=False` (`pysyncobj-nobatch`: each command sent at once).

Follower process: `python -m openraft_fast.bench.peers.pysyncobj --self HOST:PORT --partners A,B
[--nobatch]` (prints `READY <port>`). pysyncobj is an optional dependency (the `bench` extra)."""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import List, Optional, Sequence

from openraft_fast.errors import NetworkError, Timeout

# Followers wait this long before standing for election, so node 1 (PySyncObj's default
# 0.4-1.4 s) wins the first one.
FOLLOWER_ELECTION_TIMEOUT = (6.0, 8.0)
CONFIGS = {"pysyncobj": False, "pysyncobj-nobatch": True}    # row name -> batching off


def available() -> bool:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return False
    return True


def _counter_class():
    from pysyncobj import SyncObj, replicated

    class Counter(SyncObj):
        def __init__(self, self_addr, partners, conf):
            super().__init__(self_addr, list(partners), conf)
            self._count = 0

        @replicated
        def put(self, payload):
            self._count += 1

    return Counter


def _conf(nobatch: bool, follower: bool):
    from pysyncobj import SyncObjConf
    kw: dict = {"appendEntriesUseBatch": not nobatch}
    if follower:
        kw["raftMinTimeout"], kw["raftMaxTimeout"] = FOLLOWER_ELECTION_TIMEOUT
        kw["connectionTimeout"] = FOLLOWER_ELECTION_TIMEOUT[1]    # PySyncObj requires >= raftMaxTimeout
    return SyncObjConf(**kw)


class PySyncObjLeader:
    """Node 1 of a PySyncObj cluster with the write API `run_load` drives."""

    def __init__(self, self_addr: str, partners: Sequence[str], nobatch: bool):
        self._loop = asyncio.get_running_loop()
        self._obj = _counter_class()(self_addr, partners, _conf(nobatch, follower=False))

    async def wait_leader(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self._obj._isLeader() and self._obj.isReady()):
            if time.monotonic() > deadline:
                raise Timeout(f"pysyncobj: node 1 not a ready leader after {timeout}s "
                              f"(leader: {self._obj._getLeader()})")
            await asyncio.sleep(0.05)

    def client_write(self, payload):
        fut = self._loop.create_future()
        call_soon = self._loop.call_soon_threadsafe

        def done(result, error):          # on PySyncObj's tick thread
            call_soon(_resolve, fut, error)

        self._obj.put(payload, callback=done)
        return fut

    def client_write_many(self, payloads):
        # PySyncObj has no batch call: one command per entry, the batch completes with its last.
        futs = [self.client_write(p) for p in payloads]
        return asyncio.gather(*futs)

    async def close(self) -> None:
        self._obj.destroy()
        await asyncio.sleep(0.2)          # its tick thread stops on the next tick


def _resolve(fut, error) -> None:
    if fut.done():
        return
    if error == 0:                        # pysyncobj.FAIL_REASON.SUCCESS
        fut.set_result(None)
    else:
        fut.set_exception(NetworkError(f"pysyncobj: write failed (FAIL_REASON {error})"))


def follower_argv(self_addr: str, partners: List[str], nobatch: bool) -> List[str]:
    argv = ["openraft_fast.bench.peers.pysyncobj", "--self", self_addr, "--partners", ",".join(partners)]
    return argv + (["--nobatch"] if nobatch else [])


def main(argv: Optional[List[str]] = None) -> None:
    from openraft_fast.bench.procs import announce_ready, exit_with_parent
    ap = argparse.ArgumentParser(prog="python -m openraft_fast.bench.peers.pysyncobj")
    ap.add_argument("--self", dest="self_addr", required=True)
    ap.add_argument("--partners", required=True)
    ap.add_argument("--nobatch", action="store_true")
    args = ap.parse_args(argv)
    exit_with_parent()
    obj = _counter_class()(args.self_addr, args.partners.split(","), _conf(args.nobatch, follower=True))
    announce_ready(int(args.self_addr.rsplit(":", 1)[1]))
    try:
        while True:
            time.sleep(3600)              # PySyncObj ticks on its own thread; stdin EOF exits
    finally:
        obj.destroy()


if __name__ == "__main__":
    main()
