"""Lock and election recipes (kv.recipes) on an in-process cluster: mutual exclusion in
request order with growing fencing tokens, a crashed holder released by its lease, a waiter
that gives up leaving the queue, failover, elections, and `kv lock NAME -- CMD`."""
import asyncio
import sys

import pytest

from kv_support import KvCluster
from openraft_fast.errors import InvalidArgument
from openraft_fast.kv import KvClient
from openraft_fast.kv.errors import KvRequestError


def test_lock_excludes_and_serves_contenders_in_order_with_growing_tokens(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                holders, order = [], []

                async def contender(i):
                    await asyncio.sleep(0.02 * i)           # ask in order i
                    async with kv.lock("jobs/cleanup", ttl=5) as lock:
                        holders.append(i)
                        assert holders == [i], holders      # nobody else holds it
                        order.append((i, lock.fencing_token))
                        await asyncio.sleep(0.05)
                        holders.remove(i)

                await asyncio.gather(*(contender(i) for i in range(6)))
                assert [i for i, _ in order] == list(range(6))
                tokens = [t for _, t in order]
                assert tokens == sorted(tokens) and len(set(tokens)) == 6
                assert await kv.list("jobs/cleanup/") == []     # every key released
                with pytest.raises(InvalidArgument):
                    kv.lock("bad/", 5)
    run(body())


def test_a_crashed_holder_is_released_by_its_lease(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv, KvClient(c.urls()) as other:
                ttl = 0.8
                first = await kv.lock("res", ttl=ttl).__aenter__()
                first._lease._keeper.cancel()           # the holder "crashes": no keepalive, no release
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                async with other.lock("res", ttl=ttl) as second:
                    waited = loop.time() - t0
                    assert second.fencing_token > first.fencing_token
                assert ttl * 0.8 <= waited < ttl + 3.0, waited
                with pytest.raises(KvRequestError, match="lease_not_found"):
                    await kv.keepalive(first._lease.id)          # its lease expired
                await first.__aexit__(None, None, None)          # a late release is harmless
    run(body())


def test_a_waiter_that_gives_up_leaves_the_queue(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                held = await kv.lock("q", ttl=5).__aenter__()
                waiter = asyncio.ensure_future(kv.lock("q", ttl=5).__aenter__())
                while len(await kv.list("q/")) < 2:
                    await asyncio.sleep(0.01)
                waiter.cancel()
                await asyncio.gather(waiter, return_exceptions=True)
                assert [i.revision for i in await kv.list("q/")] == [held.fencing_token]
                await held.__aexit__(None, None, None)
                async with kv.lock("q", ttl=5) as again:       # not stuck behind the one that left
                    assert again.fencing_token > held.fencing_token
    run(body())


def test_lock_holders_never_overlap_across_a_leader_stop(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3, 4, 5])
            async with KvClient(c.urls(), timeout=20) as kv:
                holders, tokens = [], []

                async def contender(i):
                    for _ in range(3):
                        async with kv.lock("fo", ttl=3) as lock:
                            holders.append(i)
                            assert len(holders) == 1, holders
                            tokens.append(lock.fencing_token)
                            await asyncio.sleep(0.02)
                            holders.remove(i)

                work = asyncio.gather(*(contender(i) for i in range(4)))
                await asyncio.sleep(0.1)
                await c.stop(await c.wait_leader())
                await asyncio.wait_for(work, 30)
                assert tokens == sorted(tokens) and len(tokens) == 12
    run(body())


def test_election_campaign_resign_leader_and_observe(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                a, b = kv.election("svc/primary", ttl=5), kv.election("svc/primary", ttl=5)
                seen = []

                async def observe():
                    async for value in kv.election("svc/primary").observe():
                        seen.append(value)

                watcher = asyncio.ensure_future(observe())
                await a.campaign("node-a")
                runner_up = asyncio.ensure_future(b.campaign("node-b"))
                await asyncio.sleep(0.2)
                assert not runner_up.done() and (await a.leader())[1] == "node-a"
                await a.resign()
                await asyncio.wait_for(runner_up, 5)
                assert (await b.leader())[1] == "node-b"
                with pytest.raises(InvalidArgument):
                    await b.campaign("again")
                await b.resign()
                assert await b.leader() is None
                while seen[-1:] != [None] or len(seen) < 4:
                    await asyncio.sleep(0.01)
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                assert seen == [None, "node-a", "node-b", None]
    run(body())


def test_cli_kv_lock_runs_the_command_with_its_token_one_at_a_time(run, tmp_path):
    from kv_support import cli

    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            ep = ",".join(c.urls())
            log = tmp_path / "log"
            script = ("import os, sys, time; f = open(sys.argv[1], 'a'); "
                      "f.write('start %s\\n' % os.environ['OPENRAFT_FAST_LOCK_TOKEN']); f.flush(); "
                      "time.sleep(0.3); f.write('end\\n'); sys.exit(int(sys.argv[2]))")
            runs = [cli("kv", "lock", "batch", "--endpoints", ep, "--", sys.executable, "-c", script, str(log),
                        str(code)) for code in (0, 7)]
            results = await asyncio.gather(*runs)
            assert sorted(rc for rc, _, _ in results) == [0, 7]
            lines = log.read_text().splitlines()
            assert [line.split()[0] for line in lines] == ["start", "end", "start", "end"]   # never interleaved
            first, second = int(lines[0].split()[1]), int(lines[2].split()[1])
            assert second > first
            async with KvClient(c.urls()) as kv:
                assert await kv.list("batch/") == []
    run(body())
