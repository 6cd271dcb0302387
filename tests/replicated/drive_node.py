"""One process serving the example LockCounter (examples/lock_counter.py) for the process
test: `drive_node.py ID PEERS DATA_DIR INCREMENTS`. It prints JSON lines: {"up": id} once
started, one {"incr": result} / {"error": name, "reason": ...} per increment, {"done": n};
then it answers stdin lines "leader", "value" (a linearizable query) and "quit"."""
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from lock_counter import LockCounter  # noqa: E402

from openraft_fast import Config, OutcomeUnknown, RaftError, run  # noqa: E402
from openraft_fast.replicated import ReplicatedNode  # noqa: E402


def say(**kw):
    print(json.dumps(kw), flush=True)


async def increments(obj, n):
    for _ in range(n):
        try:
            say(incr=await obj.incr())
        except OutcomeUnknown as exc:
            say(error="OutcomeUnknown", reason=exc.reason)
        except RaftError as exc:
            say(error=type(exc).__name__, reason=str(exc))
    say(done=n)


async def main(node_id, peers, data_dir, n):
    obj = LockCounter()
    node = await ReplicatedNode.start(obj, node_id, peers, data_dir, config=Config(election_timeout_min=0.3,
                                                                                   election_timeout_max=0.6))
    say(up=node_id)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()             # "go"
    work = asyncio.ensure_future(increments(obj, n))
    while line := (await reader.readline()).decode().strip():
        if line == "leader":
            say(leader=node.raft.current_leader())
        elif line == "value":
            say(value=await obj.value())
        elif line == "quit":
            break
    work.cancel()
    await node.close()


if __name__ == "__main__":
    peers = {int(i): a for i, a in (p.split("=") for p in sys.argv[2].split(","))}
    run(main(int(sys.argv[1]), peers, sys.argv[3], int(sys.argv[4])))
