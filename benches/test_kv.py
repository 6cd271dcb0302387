"""KV service benchmarks: the state machine's batch apply (1024 commands a batch), and puts
through the HTTP API (KvClient -> KvServer on 127.0.0.1 -> 3 in-process nodes on a LocalRouter),
1 client and 64 concurrent clients. Figures go to extra_info."""
import asyncio
import time

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast._core.log import LogSlice
from openraft_fast._core.types import LeaderId
from openraft_fast.kv import KvClient, KvStateMachine, commands
from openraft_fast.kv.server import KvServer
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore

BATCH = 1024


def test_kv_apply_batch(benchmark):
    benchmark.group = "kv state machine apply (1024 puts/deletes/cas a batch)"
    cmds = [[commands.put(f"k{i % 4096}", "v" * 16), commands.delete(f"k{(i * 7) % 4096}"),
             commands.cas(f"k{i % 4096}", "v" * 16, "w")][i % 3] for i in range(BATCH)]
    sm = KvStateMachine()
    state = {"start": 1}
    loop = asyncio.new_event_loop()

    def one():
        s = state["start"]
        loop.run_until_complete(sm.apply(LogSlice(s, cmds, None, [(s, LeaderId(1, 1))])))
        state["start"] = s + BATCH
    try:
        benchmark.pedantic(one, rounds=20, iterations=1)
    finally:
        loop.close()
    benchmark.extra_info.update(us_per_entry=round(benchmark.stats.stats.median / BATCH * 1e6, 3))


async def _http_puts(clients: int, seconds: float) -> float:
    router = LocalRouter()
    config = Config(heartbeat_interval=0.05, election_timeout_min=0.3, election_timeout_max=0.6)
    rafts, servers = {}, {}
    try:
        for i in (1, 2, 3):
            sm = KvStateMachine()
            rafts[i] = await Raft.start(i, config, router.factory(i), MemLogStore(), sm)
            router.add(rafts[i])
            servers[i] = await KvServer(rafts[i], sm).start()
        await rafts[1].initialize({i: Node(f"local:{i}", {"http": f"127.0.0.1:{servers[i].port}"}) for i in rafts})
        await rafts[1].wait(5.0).state(ServerState.LEADER)
        done = 0
        deadline = time.perf_counter() + seconds

        async def client(n):
            nonlocal done
            async with KvClient([servers[1].url]) as kv:
                while time.perf_counter() < deadline:
                    await kv.put(f"c{n}", "v" * 16)
                    done += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return done / (time.perf_counter() - t0)
    finally:
        for s in servers.values():
            await s.close()
        for r in rafts.values():
            await r.shutdown()


def test_kv_http_puts(benchmark):
    benchmark.group = "kv HTTP puts (in-process 3 nodes, 16 B values)"
    rates = {}

    def run():
        for clients in (1, 64):
            rates[clients] = asyncio.run(_http_puts(clients, 2.0))
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({f"puts_per_s_{c}_clients": round(r) for c, r in rates.items()})
    print("\nKV HTTP puts/s: " + ", ".join(f"{c} clients {r:,.0f}" for c, r in rates.items()))
