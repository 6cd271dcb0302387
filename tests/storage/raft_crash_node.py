"""The node process of test_node_crash.py: a single-voter Raft on open_storage(DIR). It
reports its state machine after the restart, then writes k<i> = i one by one, reporting each
acknowledged write, until it is killed:

  S <index>                       the index its snapshot covers on restart (0: none)
  D <json list of [key, value]>   the state once it leads again (snapshot + replayed log)
  A <i>                           client_write of k<i> = i returned
Usage: raft_crash_node.py DIR FIRST_KEY
"""
import asyncio
import json
import sys

import msgpack

import openraft_fast as orf
from openraft_fast.network import LocalRouter
from openraft_fast.storage import open_storage

# Snapshots often, few logs kept: a restart goes through a snapshot and a replayed log.
CONFIG = orf.Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3,
                    snapshot_policy=30, max_in_snapshot_log_to_keep=3)
MAX_SECONDS = 30.0


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(path: str, first: int) -> None:
    log_store, sm = open_storage(path, segment_bytes=16 << 10)
    router = LocalRouter()
    raft = await orf.Raft.start(1, CONFIG, router.factory(1), log_store, sm)
    router.add(raft)
    if raft.metrics.membership is None:
        await raft.initialize({1: orf.Node("local:1")})
    await raft.wait(10).state(orf.ServerState.LEADER)
    await raft.wait(10).applied_index(raft.metrics.last_log_index)      # all it had, applied
    snap = raft.metrics.snapshot
    say(f"S {0 if snap is None else snap.index}")
    say("D " + json.dumps(sorted([k, v] for k, v in sm.data.items())))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_SECONDS
    i = first
    while loop.time() < deadline:
        await raft.client_write(msgpack.packb([f"k{i}", i]))
        say(f"A {i}")
        i += 1
    await raft.shutdown()
    await log_store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
