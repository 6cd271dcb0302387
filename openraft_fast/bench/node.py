"""A follower process for benchmark B3: one Raft node over TCP with an in-memory log and the no-op
state machine; it prints `READY <port>` once it serves and exits when its stdin closes.

`python -m openraft_fast.bench.node --id 2 --port 0 [--heartbeat S --election-min S --election-max S]
[--wal DIR]` (--wal: a WalLogStore in DIR, fsync before acknowledging, instead of the memory log)
The bench process (node 1) initializes the cluster with every node's address."""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
from typing import List, Optional

# Set to a path prefix: each follower writes its cProfile stats to PREFIX.node<ID> when the
# bench closes it (`python -m pstats PREFIX.node2`).
PROFILE_ENV = "OPENRAFT_FAST_BENCH_PROFILE"


def main(argv: Optional[List[str]] = None) -> None:
    from openraft_fast import Config, Raft
    from openraft_fast._aio import freeze_startup_heap, run
    from openraft_fast.bench.procs import announce_ready, exit_with_parent
    from openraft_fast.network.tcp import TcpNetworkFactory, serve_tcp
    from openraft_fast.storage import MemLogStore, NoopStateMachine
    from openraft_fast.storage.wal import WalLogStore

    ap = argparse.ArgumentParser(prog="python -m openraft_fast.bench.node")
    ap.add_argument("--id", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--heartbeat", type=float, default=Config.heartbeat_interval)
    ap.add_argument("--election-min", type=float, default=Config.election_timeout_min)
    ap.add_argument("--election-max", type=float, default=Config.election_timeout_max)
    ap.add_argument("--wal", metavar="DIR", help="log to a WalLogStore in DIR (default: memory)")
    args = ap.parse_args(argv)
    config = Config(heartbeat_interval=args.heartbeat, election_timeout_min=args.election_min,
                    election_timeout_max=args.election_max)

    profile_path = os.environ.get(PROFILE_ENV)
    profiler = cProfile.Profile() if profile_path else None

    async def serve():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        log = MemLogStore() if args.wal is None else WalLogStore(args.wal)
        raft = await Raft.start(args.id, config, TcpNetworkFactory(args.id, config, ssl=None), log,
                                NoopStateMachine())
        server = await serve_tcp(raft, args.host, args.port)
        freeze_startup_heap()
        if profiler is not None:
            # Stop (and write the profile) when stdin closes, instead of exiting at once.
            exit_with_parent(on_eof=lambda: loop.call_soon_threadsafe(stop.set))
            profiler.enable()
        else:
            exit_with_parent()
        announce_ready(server.port)
        try:
            await stop.wait()                 # until stdin closes (or killed)
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(f"{profile_path}.node{args.id}")
            await raft.shutdown()
            await server.close()
            if args.wal is not None:
                await log.close()

    run(serve())


if __name__ == "__main__":
    main()
