"""KvClient against an in-process cluster with real HTTP servers: it follows redirects to the
leader, fails over when the leader stops, says when a write's outcome is unknown, keeps its
deadline, and refuses bad arguments."""
import asyncio

import pytest

from kv_support import WAIT, KvCluster, free_ports
from openraft_fast.errors import InvalidArgument, InvalidArgumentType
from openraft_fast.kv import KvClient, KvItem, KvOutcomeUnknown, KvRequestError, KvUnavailable
from openraft_fast.kv.client import CasResult


def test_follows_redirects_to_the_leader(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            f = [i for i in (1, 2, 3) if i != lead][0]
            async with KvClient([c.url(f)]) as kv:
                rev = await kv.put("k", "v")
                assert kv._leader == c.url(lead)             # it learned where the leader is
                assert await kv.get("k") == KvItem("k", "v", rev)
                assert await kv.cas("k", "w", expected="v") == CasResult(True, rev + 1, "w")
                assert await kv.cas("k", "x", expected="v") == CasResult(False, rev + 1, "w")
                # every command takes a log index, a refused cas too: revisions are log indexes
                r3 = await kv.cas("k", "x", expected_revision=rev + 1)
                assert r3.ok and r3.revision > rev + 2 and r3.value == "x"
                r4 = await kv.cas("new", "1", expected=None)
                assert r4.ok and r4.revision > r3.revision
                assert (await kv.delete("k")) > r4.revision
                assert await kv.get("k") is None
                assert await kv.list() == [KvItem("new", "1", r4.revision)]
                assert (await kv.status(c.url(f)))["id"] == f
                statuses = await kv.cluster_status()
                assert list(statuses) == [c.url(f)] and statuses[c.url(f)]["leader"] == lead
    run(body())


def test_fails_over_when_the_leader_stops(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient(c.urls(), timeout=WAIT * 2) as kv:
                await kv.put("a", "1")
                await c.stop(lead)                          # the node and its HTTP server go away
                rev = await kv.put("b", "2")
                new = await c.wait_leader(exclude=[lead])
                assert new != lead and kv._leader == c.url(new)
                assert await kv.get("a") is not None and (await kv.get("b")).revision == rev
                assert [i.key for i in await kv.list()] == ["a", "b"]
                statuses = await kv.cluster_status()
                assert isinstance(statuses[c.url(lead)], KvUnavailable)
                assert statuses[c.url(new)]["state"] == "leader"
    run(body())


def test_an_ambiguous_cas_raises_outcome_unknown_and_a_put_may_retry(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3], request_timeout=1.0)
            async with KvClient(c.urls(), timeout=WAIT * 2) as kv:
                await kv.put("k", "0")
                c.router.isolate(lead)                      # its writes can no longer commit
                kv._leader = c.url(lead)
                # Both reach the isolated leader at once (before it steps down): appended there,
                # never committed. Neither is retried.
                outcomes = await asyncio.gather(kv.cas("k", "1", expected="0"),
                                                kv.put("k", "2", retry_ambiguous=False), return_exceptions=True)
                assert [type(o) for o in outcomes] == [KvOutcomeUnknown, KvOutcomeUnknown], outcomes
                # By default a put retries: the other two nodes elect a leader and it applies there.
                kv._leader = c.url(lead)
                rev = await kv.put("k", "3")
                assert kv._leader != c.url(lead)
                item = await kv.get("k")
                assert item.value == "3" and item.revision == rev
    run(body())


def test_the_deadline_holds_when_no_endpoint_answers(run):
    async def body():
        dead = [f"127.0.0.1:{p}" for p in free_ports(2)]
        async with KvClient(dead, timeout=0.5, request_timeout=0.2) as kv:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(KvUnavailable, match="cannot connect"):
                await kv.put("k", "v")
            with pytest.raises(KvUnavailable):
                await kv.get("k")
            assert loop.time() - t0 < 10        # bounded: never waits forever
    run(body())


def test_no_leader_is_unavailable_not_ambiguous(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1], init=False)
            async with KvClient([c.url(1)], timeout=0.5) as kv:
                with pytest.raises(KvUnavailable) as info:
                    await kv.put("k", "v")
                assert "no_leader" in str(info.value) and not info.value.ambiguous
    run(body())


def test_refusals_raise_request_errors(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                with pytest.raises(KvRequestError) as info:
                    await kv.change_membership([1, 2, 99])
                assert (info.value.status, info.value.code) == (400, "membership_learner_not_found")
                with pytest.raises(KvRequestError) as info:
                    await kv.transfer_leader(42)
                assert info.value.status == 400
                with pytest.raises(KvRequestError) as info:
                    await kv.init({1: ("127.0.0.1:1", "127.0.0.1:2")})
                assert (info.value.status, info.value.code) == (409, "init_refused")
    run(body())


def test_bad_arguments_are_refused_before_any_request(run):
    async def body():
        with pytest.raises(InvalidArgument):
            KvClient([])
        with pytest.raises(InvalidArgument):
            KvClient(["ftp://h:1"])
        with pytest.raises(InvalidArgument):
            KvClient(["http://h"])                  # no port
        with pytest.raises(InvalidArgumentType):
            KvClient([5])
        with pytest.raises(InvalidArgument):
            KvClient(["h:1"], timeout=0)
        async with KvClient("127.0.0.1:1") as kv:
            assert kv.endpoints == ["http://127.0.0.1:1"]
            with pytest.raises(InvalidArgumentType):
                await kv.put(b"k", "v")
            with pytest.raises(InvalidArgumentType):
                await kv.put("k", 1)
            with pytest.raises(InvalidArgument):
                await kv.get("")
            with pytest.raises(InvalidArgument):
                await kv.cas("k", "v")
            with pytest.raises(InvalidArgument):
                await kv.cas("k", "v", expected="a", expected_revision=3)
            with pytest.raises(InvalidArgument):
                await kv.cas("k", "v", expected_revision=-1)
    run(body())
