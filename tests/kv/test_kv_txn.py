"""Transactions and range deletes in the KvStateMachine (kv.txn), and the watch history: the
changes of the last N revisions, what is compacted, and both through snapshots."""

import msgpack
import pytest

from kv_support import KvCluster, cli
from openraft_fast.errors import InvalidArgument
from openraft_fast.kv import KvClient, KvItem, KvStateMachine, commands, txn
from openraft_fast.kv.state_machine import CompactedRevision, KvChange
from test_kv_binary import BinaryCluster
from test_kv_cli import one_line_error
from test_kv_http import call, followers
from test_kv_state_machine import apply


def cmp(key, target, op, value):
    return {"key": key, "target": target, "op": op, "value": value}


def put(key, value):
    return {"put": {"key": key, "value": value}}


def t(compare=(), success=(), failure=()):
    return txn.txn_command({"compare": list(compare), "success": list(success), "failure": list(failure)})


async def run_txn(sm, **kw):
    payload, parsed = t(**kw)
    (data,) = await apply(sm, payload)
    return txn.answer_json(parsed, data)


def test_a_transaction_runs_the_branch_its_compares_choose_in_one_revision(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.put("acct/a", "70"), commands.put("acct/b", "30"))     # revisions 1, 2
        # Move 20 from a to b if a is still at the revision we read.
        got = await run_txn(sm, compare=[cmp("acct/a", "revision", "==", 1)],
                            success=[put("acct/a", "50"), put("acct/b", "50"), {"get": {"key": "acct/b"}}],
                            failure=[{"get": {"key": "acct/a"}}])
        assert got == {"succeeded": True, "revision": 3,
                       "results": [{"revision": 3}, {"revision": 3}, {"value": "50", "revision": 3}]}
        assert sm.get("acct/a") == KvItem("acct/a", "50", 3) and sm.get("acct/b") == KvItem("acct/b", "50", 3)
        # The same transaction again: the compare fails, the failure branch reads.
        got = await run_txn(sm, compare=[cmp("acct/a", "revision", "==", 1)],
                            success=[put("acct/a", "30")], failure=[{"get": {"key": "acct/a"}}, {"get": {"key": "x"}}])
        assert got == {"succeeded": False, "revision": 4, "results": [{"value": "50", "revision": 3}, None]}
        assert sm.get("acct/a").value == "50"
    run(body())


@pytest.mark.parametrize("target,op,value,holds_present,holds_absent", [
    ("value", "==", "v", True, False), ("value", "!=", "v", False, True),
    ("value", "==", None, False, True), ("value", "!=", None, True, False),
    ("value", "<", "w", True, False), ("value", ">", "u", True, False), ("value", ">", "v", False, False),
    ("revision", "==", 1, True, False), ("revision", "==", 0, False, True), ("revision", ">", 0, True, False),
    ("revision", "<", 1, False, True), ("revision", "!=", 1, False, True),
    ("exists", "==", True, True, False), ("exists", "!=", True, False, True),
])
def test_compare_semantics_on_a_present_and_an_absent_key(run, target, op, value, holds_present, holds_absent):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.put("k", "v"))         # "k" = "v" at revision 1; "gone" never written
        for key, expected in (("k", holds_present), ("gone", holds_absent)):
            got = await run_txn(sm, compare=[cmp(key, target, op, value)])
            assert got["succeeded"] is expected, (key, target, op, value)
    run(body())


def test_ops_of_a_branch_run_in_order_and_deletes_count(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, *(commands.put(f"p/{i}", str(i)) for i in range(3)), commands.put("q", "x"))
        got = await run_txn(sm, success=[{"delete": {"key": "q"}}, {"delete": {"key": "q"}},
                                         {"delete_range": {"prefix": "p/"}}, {"get": {"key": "p/1"}},
                                         put("p/1", "again"), {"get": {"key": "p/1"}}])
        assert got["results"] == [{"deleted": 1}, {"deleted": 0}, {"deleted": 3}, None, {"revision": 5},
                                  {"value": "again", "revision": 5}]
        assert sm.list() == [KvItem("p/1", "again", 5)]
    run(body())


def test_range_delete_removes_every_key_under_the_prefix_at_one_revision(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.put("a/1", "x"), commands.put("a/2", "y"), commands.put("ab", "z"),
                    commands.put("b", "w"))
        assert await apply(sm, commands.delete_range("a/"), commands.delete_range("zz")) == [(5, 2), (6, 0)]
        assert [i.key for i in sm.list()] == ["ab", "b"]
        assert sm.changes(5) == [KvChange(5, "delete", "a/1", None, 1), KvChange(5, "delete", "a/2", None, 2)]
        with pytest.raises(InvalidArgument):
            commands.delete_range("")
    run(body())


def test_malformed_transaction_entries_change_nothing(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.put("k", "v"))
        bad = [[5, [], [[1, "k"]], []],                    # a put without its value
               [5, [["k", 9, 0, "v"]], [], []],            # an unknown compare target
               [5, [], [[1, "k", "new"], [8, "x"]], []],   # a good op, then an unknown one: nothing applies
               [5, [], []], [6, ""], [6, 7]]
        assert await apply(sm, *(msgpack.packb(b) for b in bad)) == [None] * len(bad)
        assert sm.list() == [KvItem("k", "v", 1)]
    run(body())


def test_bad_transaction_requests_are_refused_before_they_reach_the_log():
    cases = [
        ({"compare": [cmp("k", "size", "==", 1)]}, "target must be one of"),
        ({"compare": [cmp("k", "value", "~", "v")]}, "op must be one of"),
        ({"compare": [cmp("k", "revision", "==", "1")]}, "integer"),
        ({"compare": [cmp("k", "exists", "<", True)]}, "exists takes op"),
        ({"compare": [{"key": "k", "target": "value", "op": "=="}]}, "missing field 'value'"),
        ({"success": [{"put": {"key": "k"}}]}, "missing field 'value'"),
        ({"success": [{"put": {"key": "k", "value": 1}}]}, "must be a str"),
        ({"success": [{"put": {"key": "k", "value": "v"}, "get": {"key": "k"}}]}, "one of"),
        ({"success": [{"upsert": {"key": "k"}}]}, "unknown op"),
        ({"success": [{"delete_range": {"prefix": ""}}]}, "must not be empty"),
        ({"failure": "no"}, "must be a list"),
        ({"success": [put("k", "v")] * (txn.MAX_TXN_OPS + 1)}, "at most"),
        ({"compares": []}, "unknown field 'compares'"),
    ]
    for body, message in cases:
        with pytest.raises((InvalidArgument, TypeError)) as info:
            txn.txn_command(body)
        assert message in str(info.value), (body, info.value)


def test_history_keeps_the_changes_of_the_last_n_revisions(run):
    async def body():
        sm = KvStateMachine(watch_history=3)
        await apply(sm, commands.put("a", "1"), commands.put("b", "2"), commands.put("a", "3"),
                    commands.delete("b"), commands.cas("c", None, "4"))          # revisions 1..5
        assert sm.revision == 5 and sm.compacted_revision == 2
        assert sm.changes(3) == [KvChange(3, "put", "a", "3", 1), KvChange(4, "delete", "b", None, 2),
                                 KvChange(5, "put", "c", "4", 0)]
        assert sm.changes(5) == [KvChange(5, "put", "c", "4", 0)] and sm.changes(6) == []
        with pytest.raises(CompactedRevision) as info:
            sm.changes(2)
        assert (info.value.revision, info.value.compacted_revision) == (2, 2)
        # Entries that change nothing (a failed cas, a delete of an absent key) add no change.
        await apply(sm, commands.cas("c", "nope", "x"), commands.delete("zz"))
        assert [c.revision for c in sm.changes(5)] == [5] and sm.compacted_revision == 4
    run(body())


def test_history_survives_a_snapshot_and_an_old_snapshot_compacts_everything(run):
    async def body():
        sm = KvStateMachine(watch_history=10)
        await apply(sm, commands.put("a", "1"), commands.put("b", "2"), commands.delete("a"))
        snap = await sm.build_snapshot()
        other = KvStateMachine(watch_history=10)
        await other.install_snapshot(snap.meta, snap.data)
        assert other.changes(1) == sm.changes(1) and other.compacted_revision == 0
        # A snapshot of format 1 (before the history) holds none: all up to it is compacted.
        old = msgpack.packb([1, [["b", "2", 2]]])
        legacy = KvStateMachine()
        await legacy.install_snapshot(snap.meta, old)
        assert legacy.get("b") == KvItem("b", "2", 2) and legacy.compacted_revision == 3
        with pytest.raises(CompactedRevision):
            legacy.changes(3)
        assert legacy.changes(4) == []
    run(body())


def test_watch_history_must_be_a_count():
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(InvalidArgument):
            KvStateMachine(watch_history=bad)


# ---------------------------------------------------------------------------- over the service
def test_txn_and_range_delete_routes_over_http(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            u = c.url(lead)
            st, b, _ = await call("PUT", u + "/v1/kv/cfg/a", {"value": "1"})
            rev = b["revision"]
            req = {"compare": [cmp("cfg/a", "value", "==", "1")],
                   "success": [put("cfg/a", "2"), put("cfg/b", "2"), {"get": {"key": "cfg/a"}}],
                   "failure": [{"get": {"key": "cfg/a"}}]}
            st, b, _ = await call("POST", u + "/v1/txn", req)
            assert st == 200 and b["succeeded"] is True and b["revision"] > rev
            assert b["results"] == [{"revision": b["revision"]}] * 2 + [{"value": "2", "revision": b["revision"]}]
            st, b2, _ = await call("POST", u + "/v1/txn", req)
            assert (st, b2["succeeded"], b2["results"]) == (200, False, [{"value": "2", "revision": b["revision"]}])
            # A follower sends writes, transactions included, to the leader.
            f = followers(c, lead)[0]
            st, _, headers = await call("POST", c.url(f) + "/v1/txn", req)
            assert st == 307 and headers["Location"] == u + "/v1/txn"
            # Bad transactions: 400, nothing appended.
            last = c.rafts[lead].metrics.last_log_index
            for bad, code in (({"compare": [cmp("k", "nope", "==", 1)]}, "bad_request"),
                              ({"succes": []}, "unknown_field"), ([], "bad_request")):
                st, b, _ = await call("POST", u + "/v1/txn", bad)
                assert (st, b["error"]["code"]) == (400, code), (bad, b)
            assert c.rafts[lead].metrics.last_log_index == last
            # Range delete: one revision for every key under the prefix.
            st, b, _ = await call("DELETE", u + "/v1/kv?prefix=cfg/")
            assert st == 200 and b["deleted"] == 2
            st, b, _ = await call("GET", u + "/v1/kv?prefix=cfg/")
            assert b["items"] == []
            for query in ("", "?prefix="):
                st, b, _ = await call("DELETE", u + "/v1/kv" + query)
                assert (st, b["error"]["code"]) == (400, "bad_request"), query
    run(body())


@pytest.mark.parametrize("protocol", ["http", "orf"])
def test_client_txn_and_delete_range(run, protocol):
    async def body():
        async with BinaryCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient([c.follower_endpoint(lead, protocol)]) as kv:
                r = await kv.put("acct/a", "70")
                await kv.put("acct/b", "30")
                res = await kv.txn(compare=[cmp("acct/a", "revision", "==", r)],
                                   success=[put("acct/a", "50"), put("acct/b", "50")])
                assert res.succeeded and res.results == [{"revision": res.revision}] * 2
                res = await kv.txn(compare=[cmp("acct/a", "revision", "==", r)], failure=[{"get": {"key": "acct/a"}}])
                assert not res.succeeded and res.results[0]["value"] == "50"
                with pytest.raises(InvalidArgument):
                    await kv.txn(success=[{"put": {"key": "x"}}])       # refused before sending
                revision, deleted = await kv.delete_range("acct/")
                assert deleted == 2 and revision > res.revision
                assert await kv.list("acct/") == []
    run(body())


def test_cli_txn_and_delete_prefix(run):
    import json


    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            ep = ",".join(c.urls())
            request = json.dumps({"compare": [cmp("job/lock", "exists", "==", False)],
                                  "success": [put("job/lock", "me"), put("job/owner", "me")]})
            rc, out, err = await cli("kv", "txn", request, "--endpoints", ep)
            assert rc == 0, err
            got = json.loads(out)
            assert got["succeeded"] is True and got["results"] == [{"revision": got["revision"]}] * 2
            rc, out, err = await cli("kv", "txn", request, "--endpoints", ep)      # the lock is taken now
            assert rc == 1 and json.loads(out)["succeeded"] is False
            rc, out, err = await cli("kv", "delete", "--prefix", "job/", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["deleted"] == 2
            for argv, expect in ((["txn", "{not json"], "not valid JSON"),
                                 (["txn", json.dumps({"success": [{"put": {"key": "k"}}]})], "missing field"),
                                 (["delete"], "exactly one"), (["delete", "k", "--prefix", "p"], "exactly one")):
                rc, out, err = await cli("kv", *argv, "--endpoints", ep)
                assert expect in one_line_error(rc, out, err), (argv, err)
    run(body())
