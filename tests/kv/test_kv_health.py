"""GET /v1/health (Raft.health): 200 when a node is fit to serve, 503 with a reason otherwise;
no Raft round trip."""
import asyncio

import aiohttp
import pytest

from kv_support import WAIT, KvCluster
from openraft_fast import InvalidArgument
from openraft_fast.kv import KvClient, KvStateMachine

FIELDS = {"ok", "id", "state", "leader", "applied", "lag"}


async def health(url):
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v1/health", timeout=aiohttp.ClientTimeout(total=WAIT)) as r:
            return r.status, await r.json()


def test_a_healthy_cluster_answers_200_everywhere(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient([c.url(lead)]) as kv:
                await kv.put("k", "v")
            await c.wait_applied(c.rafts[lead].metrics.last_applied.index)
            for i in (1, 2, 3):
                st, b = await health(c.url(i))
                assert st == 200 and b["ok"] is True and FIELDS <= set(b) and "reason" not in b, b
                assert b["id"] == i and b["leader"] == lead and b["lag"] == 0
                assert b["state"] == ("leader" if i == lead else "follower")
                assert b["applied"] == c.rafts[i].metrics.last_applied.index
    run(body())


def test_no_quorum_no_leader_stopped_and_not_member_answer_503(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            await c.add_kv_node(4)                  # running, in no membership
            st, b = await health(c.url(4))
            assert (st, b["ok"], b["reason"], b["state"]) == (503, False, "not_member", "not_member")
            # the leader loses both followers: within a lease it has no quorum acked
            followers = [i for i in (1, 2, 3) if i != lead]
            for i in followers:
                c.router.isolate(i)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while True:
                st, b = await health(c.url(lead))
                if st == 503 or loop.time() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert st == 503 and b["reason"] == "no_leader" and FIELDS <= set(b), b
            # an isolated follower stops naming the leader: no_leader too
            await c.rafts[followers[0]].wait(WAIT).metrics(lambda m: m.current_leader is None, "no leader")
            st, b = await health(c.url(followers[0]))
            assert st == 503 and b["reason"] == "no_leader"
            # a stopped node whose HTTP server still answers
            await c.rafts[followers[1]].shutdown()
            st, b = await health(c.url(followers[1]))
            assert (st, b["reason"], b["state"]) == (503, "stopped", "shutdown")
            c.router.heal()
    run(body())


class StalledApply(KvStateMachine):
    """Applies only while `go` is set: committed entries pile up unapplied (lag)."""

    def __init__(self):
        super().__init__()
        self.go = asyncio.Event()
        self.go.set()

    async def apply(self, entries):
        await self.go.wait()
        return await super().apply(entries)


def test_a_node_that_lags_answers_503_lagging(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3], health_max_lag=5)
            slow = next(i for i in (1, 2, 3) if i != lead)
            # swap in a stalling state machine on a follower: restart it on its log
            await c.stop(slow)
            log_store, _ = c.stores[slow]
            c.router.heal(slow)
            sm = StalledApply()
            sm.go.clear()
            raft = await c.start_node(slow, log_store, sm)
            from openraft_fast.kv.server import KvServer
            c.servers[slow] = await KvServer(raft, sm, "127.0.0.1", 0, health_max_lag=5).start()
            async with KvClient([c.url(lead)]) as kv:
                for i in range(20):
                    await kv.put(f"k{i}", "v")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while True:
                st, b = await health(c.url(slow))
                if b.get("reason") == "lagging" or loop.time() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert st == 503 and b["reason"] == "lagging" and b["lag"] > 5, b
            sm.go.set()
            await c.wait_applied(c.rafts[lead].metrics.last_applied.index, ids=[slow])
            st, b = await health(c.url(slow))
            assert st == 200 and b["lag"] == 0, b
    run(body())


def test_max_lag_must_be_a_count(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1])
            with pytest.raises(InvalidArgument):
                c.rafts[lead].health(-1)
            assert c.rafts[lead].health(0)["ok"] is True
    run(body())
