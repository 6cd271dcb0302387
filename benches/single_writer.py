"""One writer, three in-process nodes (issue 21, part 3): CPU microseconds per write and the
engine events and commands each write costs over the three nodes.

    python -m benches.single_writer [--writes 10000] [--rounds 7] [--store mem|flushed-later]

CPU time (time.process_time), best of `rounds`: steadier than a rate on a shared machine.
`--store flushed-later` is a MemLogStore that does not say it is durable on append, so every
append costs an on_log_flushed event, as a disk store's does.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast._aio import new_event_loop
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, NoopStateMachine


class FlushedLater(MemLogStore):
    durable_on_append = False


async def measure(writes: int, rounds: int, store: str) -> dict:
    router = LocalRouter()
    rafts = {}
    make = MemLogStore if store == "mem" else FlushedLater
    for i in (1, 2, 3):
        rafts[i] = await Raft.start(i, Config(), router.factory(i), make(), NoopStateMachine(), rng=random.Random(i))
        router.add(rafts[i])
    try:
        await rafts[1].initialize({i: Node(f"local:{i}") for i in rafts})
        await rafts[1].wait(5.0).state(ServerState.LEADER)
        gc.freeze()
        write = rafts[1].client_write
        executors = [r._core.executor for r in rafts.values()]
        best = float("inf")
        events = commands = 0
        for _ in range(rounds):
            e0 = sum(x.events_run for x in executors)
            c0 = sum(x.commands_run for x in executors)
            t0 = time.process_time()
            for _ in range(writes):
                await write(b"x")
            best = min(best, (time.process_time() - t0) / writes)
            events = sum(x.events_run for x in executors) - e0
            commands = sum(x.commands_run for x in executors) - c0
        return {"cpu_us_per_write": best * 1e6, "events_per_write": events / writes,
                "commands_per_write": commands / writes}
    finally:
        for r in rafts.values():
            await r.shutdown(transfer=False)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benches.single_writer")
    ap.add_argument("--writes", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--store", choices=["mem", "flushed-later"], default="mem")
    a = ap.parse_args()
    loop = new_event_loop()
    try:
        r = loop.run_until_complete(measure(a.writes, a.rounds, a.store))
    finally:
        loop.close()
    print(f"store={a.store}: {r['cpu_us_per_write']:.2f} us CPU per write (best of {a.rounds} x {a.writes}), "
          f"{r['events_per_write']:.2f} engine events and {r['commands_per_write']:.2f} commands per write "
          f"over 3 nodes")


if __name__ == "__main__":
    main()
