"""Leases: the replicated table (grant, attach, revoke, snapshots), puts and transactions with
a lease in the state machine, and over the service: the routes, keepalive, expiry decided by
the leader, a new leader restarting every TTL, and KvClient.lease."""
import asyncio
import time

import msgpack
import pytest

from kv_support import KvCluster
from openraft_fast.errors import InvalidArgument
from openraft_fast.kv import KvClient, KvItem, KvStateMachine, commands, txn
from openraft_fast.kv.errors import KvRequestError
from openraft_fast.kv.lease_table import LeaseTable
from openraft_fast.kv.state_machine import LEASE_NOT_FOUND, KvChange
from test_kv_binary import BinaryCluster
from test_kv_http import call, followers, scrape
from test_kv_state_machine import apply, entries


def test_lease_table_tracks_keys_and_tells_its_listeners():
    table = LeaseTable()
    heard = []
    table.listeners.append(lambda *event: heard.append(event))
    table.grant(5, 10.0)
    table.grant(7, 3)
    table.attach("a", 5)
    table.attach("b", 5)
    table.attach("a", 7)                   # moves to lease 7
    table.attach("b", 0)                   # written without a lease: leaves 5
    assert (table.keys, table.of_key) == ({5: set(), 7: {"a"}}, {"a": 7})
    table.attach("c", 5)
    table.detach("c")
    assert table.keys[5] == set() and table.lease_of("c") == 0
    copy = LeaseTable()
    copy.load(table.dump())
    assert (copy.ttl, copy.keys, copy.of_key) == (table.ttl, table.keys, table.of_key)
    assert table.revoke(7) == ["a"] and 7 not in table and table.of_key == {}
    assert heard == [("grant", 5, 10.0), ("grant", 7, 3), ("revoke", 7, 0)]


def test_keys_of_a_revoked_lease_go_at_one_revision_and_a_missing_lease_changes_nothing(run):
    async def body():
        sm = KvStateMachine()
        (grant,) = await apply(sm, commands.lease_grant(10))
        assert grant == (1, 10)
        got = await apply(sm, commands.put("a", "1", lease=1), commands.put("b", "2", lease=1),
                          commands.put("c", "3"), commands.put("d", "4", lease=99))
        assert got == [2, 3, 4, LEASE_NOT_FOUND] and sm.get("d") is None
        await apply(sm, commands.put("b", "again"))             # no lease now: stays after the revoke
        assert await apply(sm, commands.lease_revoke(1, 42)) == [(7, 1, 1)]
        assert [i.key for i in sm.list()] == ["b", "c"]
        assert sm.changes(7) == [KvChange(7, "delete", "a", None, 2)]
        assert await apply(sm, commands.lease_revoke(1)) == [(8, 0, 0)]      # gone already
        assert await apply(sm, commands.put("e", "5", lease=1)) == [LEASE_NOT_FOUND]
    run(body())


def test_a_transaction_naming_a_missing_lease_is_refused_whole(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.lease_grant(10))               # lease 1
        ok, parsed = txn.txn_command({"success": [{"put": {"key": "x", "value": "1", "lease": 1}}]})
        bad, _ = txn.txn_command({"success": [{"put": {"key": "y", "value": "1"}},
                                              {"put": {"key": "z", "value": "1", "lease": 9}}]})
        got = await apply(sm, ok, bad)
        assert txn.answer_json(parsed, got[0])["succeeded"] and got[1] == LEASE_NOT_FOUND
        assert sm.list() == [KvItem("x", "1", 2)] and sm.leases.keys[1] == {"x"}
        with pytest.raises(txn.LeaseNotFound):
            txn.answer_json(parsed, got[1])
    run(body())


def test_leases_survive_a_snapshot(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.lease_grant(4.5), commands.put("a", "1", lease=1), commands.put("b", "2"))
        snap = await sm.build_snapshot()
        other = KvStateMachine()
        await other.install_snapshot(snap.meta, snap.data)
        assert other.leases.ttl == {1: 4.5} and other.leases.keys == {1: {"a"}}
        assert await other.apply(entries(4, [commands.lease_revoke(1)])) == [(4, 1, 1)]
        assert [i.key for i in other.list()] == ["b"]
    run(body())


def test_bad_lease_arguments():
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(InvalidArgument):
            commands.put("k", "v", lease=bad)
    for bad in (0, -1, "3"):
        with pytest.raises(InvalidArgument):
            commands.lease_revoke(bad)
    for bad in (0, -1, True, "3", 1e7):
        with pytest.raises(InvalidArgument):
            commands.lease_grant(bad)
    assert msgpack.unpackb(commands.lease_grant(2.5)) == [commands.LEASE_GRANT, 2.5]


# ---------------------------------------------------------------------------- over the service
def test_lease_routes(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            u = c.url(lead)
            st, b, _ = await call("POST", u + "/v1/lease", {"ttl": 30})
            assert st == 200 and b["ttl"] == 30
            lease = b["id"]
            st, b, _ = await call("PUT", u + "/v1/kv/svc/a", {"value": "1", "lease": lease})
            assert st == 200
            st, b, _ = await call("GET", f"{u}/v1/lease/{lease}")
            assert st == 200 and b["keys"] == ["svc/a"] and 29 < b["remaining"] <= 30
            families = await scrape(u)
            assert families["kv_leases"].samples[0].value == 1
            st, b, _ = await call("POST", f"{u}/v1/lease/{lease}/keepalive")
            assert (st, b) == (200, {"ttl": 30})
            f = followers(c, lead)[0]
            st, _, headers = await call("POST", f"{c.url(f)}/v1/lease/{lease}/keepalive")
            assert st == 307 and headers["Location"] == f"{u}/v1/lease/{lease}/keepalive"
            st, b, _ = await call("DELETE", f"{u}/v1/lease/{lease}")
            assert (st, b["deleted"]) == (200, 1)
            st, b, _ = await call("GET", u + "/v1/kv/svc/a")
            assert st == 404
            for method, path, body_ in (("POST", f"/v1/lease/{lease}/keepalive", None),
                                        ("GET", f"/v1/lease/{lease}", None), ("DELETE", f"/v1/lease/{lease}", None),
                                        ("PUT", "/v1/kv/svc/b", {"value": "1", "lease": lease})):
                st, b, _ = await call(method, u + path, body_)
                assert (st, b["error"]["code"]) == (404, "lease_not_found"), (method, path)
            for path, body_ in (("/v1/lease", {"ttl": 0}), ("/v1/lease", {"ttl": "5"}), ("/v1/lease", {}),
                                ("/v1/lease/x/keepalive", None), ("/v1/lease/0/keepalive", None)):
                st, b, _ = await call("POST", u + path, body_)
                assert (st, b["error"]["code"]) == (400, "bad_request"), (path, body_)
    run(body())


def test_a_lease_expires_no_earlier_than_its_ttl_after_the_last_keepalive(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                ttl = 0.6
                lease = await kv.grant_lease(ttl)
                await kv.put("eph/a", "1", lease=lease)
                for _ in range(4):                  # kept alive past several TTLs
                    sent = time.monotonic()
                    await kv.keepalive(lease)
                    await asyncio.sleep(ttl / 2)
                assert await kv.get("eph/a") is not None
                while await kv.get("eph/a") is not None:
                    await asyncio.sleep(0.02)
                gone = time.monotonic()
                assert gone - sent >= ttl, gone - sent
                assert gone - sent < ttl + 2.0, gone - sent         # the leader acted on it
                with pytest.raises(Exception, match="lease_not_found"):
                    await kv.keepalive(lease)
    run(body())


def test_a_new_leader_gives_every_lease_its_full_ttl_again(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                ttl = 1.5
                lease = await kv.grant_lease(ttl)
                await kv.put("eph/a", "1", lease=lease)
                sent = time.monotonic()
                await kv.keepalive(lease)
                await c.stop(lead)
                new = await c.wait_leader()
                elected = time.monotonic()
                keeper = c.servers[new].leases
                while keeper.remaining(lease) is None or not keeper._leading:
                    await asyncio.sleep(0.01)
                # The new leader counts the whole TTL from when it took over.
                assert keeper.remaining(lease) > ttl - (time.monotonic() - elected) - 0.2
                while await kv.get("eph/a", consistency="local") is not None or \
                        await kv.get("eph/a") is not None:
                    assert time.monotonic() - sent < 10, "the lease never expired"
                    await asyncio.sleep(0.05)
                assert time.monotonic() - sent >= ttl
                assert time.monotonic() - elected >= ttl - 0.2
    run(body())


def test_client_lease_keeps_its_keys_and_says_when_it_is_lost(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv, KvClient(c.urls()) as other:
                async with kv.lease(0.6) as lease:
                    await kv.put("svc/me", "up", lease=lease.id)
                    await asyncio.sleep(1.5)                       # 2.5 TTLs: kept alive
                    assert (await kv.get("svc/me")).value == "up" and not lease.lost.is_set()
                assert await kv.get("svc/me") is None and lease.lost.is_set()     # revoked on exit
                async with kv.lease(0.6) as lease:
                    await other.revoke_lease(lease.id)             # someone revokes it meanwhile
                    await asyncio.wait_for(lease.lost.wait(), 5)
    run(body())


@pytest.mark.parametrize("protocol", ["http", "orf"])
def test_lease_calls_over_both_protocols(run, protocol):
    async def body():
        async with BinaryCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient([c.follower_endpoint(lead, protocol)]) as kv:
                lease = await kv.grant_lease(30)
                await kv.put("svc/a", "1", lease=lease)
                assert await kv.keepalive(lease) == 30
                info = await kv.lease_info(lease)
                assert info["keys"] == ["svc/a"] and info["ttl"] == 30
                assert await kv.revoke_lease(lease) == 1
                assert await kv.get("svc/a") is None
                for call in (kv.keepalive(lease), kv.revoke_lease(lease), kv.lease_info(lease),
                             kv.put("svc/b", "1", lease=lease)):
                    with pytest.raises(KvRequestError, match="lease_not_found"):
                        await call
            # A put that also gives a TTL is refused, not silently stored without one.
            from test_kv_http import call
            st, b, _ = await call("PUT", c.url(lead) + "/v1/kv/svc/c", {"value": "v", "ttl": 5})
            assert (st, b["error"]["code"]) == (400, "unknown_field")
    run(body())


def test_the_keeper_holds_one_queue_entry_per_lease_however_many_keepalives(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                leases = [await kv.grant_lease(30) for _ in range(3)]
                for _ in range(50):
                    await asyncio.gather(*(kv.keepalive(lease) for lease in leases))
                keeper = c.servers[lead].leases
                assert len(keeper._heap) == 3 and keeper._queued == set(leases)
                short = await kv.grant_lease(0.3)
                await kv.put("eph", "x", lease=short)
                for _ in range(3):                      # kept alive past its first deadline
                    await asyncio.sleep(0.15)
                    await kv.keepalive(short)
                assert await kv.get("eph") is not None
                while await kv.get("eph") is not None:
                    await asyncio.sleep(0.05)
                assert keeper.expired == 1 and len(keeper._heap) == 3
    run(body())
