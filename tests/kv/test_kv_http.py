"""The HTTP API against an in-process 3-node cluster with real aiohttp servers on 127.0.0.1:
every route, every error code, 307 from a follower, follower reads, 503 without a leader,
/metrics in Prometheus format."""

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kv_support import WAIT, KvCluster
from openraft_fast import ServerState
from openraft_fast.errors import (ChangeMembershipError, Fatal, ForwardToLeader, InitializeError, InvalidArgument,
                                  InvalidArgumentType, LeaseExpired, NetworkError, OutcomeUnknown, QuorumNotEnough,
                                  RaftError, Stopped, StorageError, Timeout, Unreachable)
from openraft_fast.kv import KvClient
from openraft_fast.kv.server import error_status


async def call(method, url, body=None, raw=None):
    """One request, no redirects: (status, JSON body, headers)."""
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, json=body, data=raw, allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=WAIT)) as r:
            return r.status, await r.json(content_type=None), r.headers


async def scrape(url):
    """GET /metrics, parsed by prometheus_client: {family name: family}."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            return {f.name: f for f in text_string_to_metric_families(await r.text())}


def followers(c, lead):
    return [i for i in sorted(c.rafts) if i != lead and i not in c.stopped]


def test_key_value_routes_on_the_leader(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            u = c.url(lead)
            st, b, _ = await call("PUT", u + "/v1/kv/app/a", {"value": "1"})
            assert st == 200 and isinstance(b["revision"], int)
            rev_a = b["revision"]
            for consistency in ("linearizable", "lease", "local"):
                st, b, _ = await call("GET", f"{u}/v1/kv/app/a?consistency={consistency}")
                assert (st, b) == (200, {"value": "1", "revision": rev_a})
            st, b, _ = await call("GET", u + "/v1/kv/app/a")          # linearizable by default
            assert (st, b) == (200, {"value": "1", "revision": rev_a})
            # cas on value: match, then mismatch answers the current value
            st, b, _ = await call("POST", u + "/v1/kv/app/a/cas", {"expected": "1", "value": "2"})
            assert st == 200 and b["ok"] is True and b["revision"] > rev_a
            rev_a2 = b["revision"]
            st, b, _ = await call("POST", u + "/v1/kv/app/a/cas", {"expected": "1", "value": "3"})
            assert (st, b) == (200, {"ok": False, "value": "2", "revision": rev_a2})
            # cas with expected null: only if absent
            st, b, _ = await call("POST", u + "/v1/kv/app/b/cas", {"expected": None, "value": "x"})
            assert st == 200 and b["ok"] is True
            st, b, _ = await call("POST", u + "/v1/kv/app/b/cas", {"expected": None, "value": "y"})
            assert st == 200 and b["ok"] is False and b["value"] == "x"
            # cas on revision
            st, b, _ = await call("POST", u + "/v1/kv/app/a/cas", {"expected_revision": rev_a, "value": "4"})
            assert (st, b) == (200, {"ok": False, "value": "2", "revision": rev_a2})
            st, b, _ = await call("POST", u + "/v1/kv/app/a/cas", {"expected_revision": rev_a2, "value": "4"})
            assert st == 200 and b["ok"] is True
            st, b, _ = await call("PUT", u + "/v1/kv/other", {"value": ""})
            assert st == 200
            st, b, _ = await call("GET", u + "/v1/kv?prefix=app/")
            assert st == 200 and [(i["key"], i["value"]) for i in b["items"]] == [("app/a", "4"), ("app/b", "x")]
            assert all(isinstance(i["revision"], int) for i in b["items"])
            st, b, _ = await call("GET", u + "/v1/kv")
            assert [i["key"] for i in b["items"]] == ["app/a", "app/b", "other"]
            st, b, _ = await call("GET", u + "/v1/kv?prefix=app/&limit=1&consistency=local")
            assert [i["key"] for i in b["items"]] == ["app/a"]
            # delete: the revision of the delete; then 404
            st, b, _ = await call("DELETE", u + "/v1/kv/app/a")
            assert st == 200 and b["revision"] > rev_a2 and b["deleted"] is True
            st, b, _ = await call("DELETE", u + "/v1/kv/app/a")
            assert st == 200 and b["deleted"] is False
            st, b, _ = await call("GET", u + "/v1/kv/app/a")
            assert st == 404 and b["error"]["code"] == "key_not_found"
            # a key with characters that need quoting, a "/" included
            st, b, _ = await call("PUT", u + "/v1/kv/sp%20ace%2Fslash%3F", {"value": "ü"})
            assert st == 200
            st, b, _ = await call("GET", u + "/v1/kv?prefix=sp")
            assert b["items"][0]["key"] == "sp ace/slash?" and b["items"][0]["value"] == "ü"
            # a key that ends in "/cas" is still a key for PUT, GET and DELETE
            st, b, _ = await call("PUT", u + "/v1/kv/odd/cas", {"value": "c"})
            assert st == 200
            st, b, _ = await call("GET", u + "/v1/kv/odd/cas")
            assert (st, b["value"]) == (200, "c")
            st, b, _ = await call("DELETE", u + "/v1/kv/odd/cas")
            assert st == 200 and b["deleted"] is True
            # every node applied the same state
            await c.wait_applied(c.rafts[lead].metrics.last_applied.index)
            assert all(c.sm(i).list() == c.sm(lead).list() for i in c.live())
    run(body())


def test_follower_redirects_writes_and_serves_reads(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            f = followers(c, lead)[0]
            leader_http = c.rafts[f].metrics.membership.get_node(lead).data["http"]
            for method, path, req in (("PUT", "/v1/kv/k", {"value": "v"}), ("DELETE", "/v1/kv/k", None),
                                      ("POST", "/v1/kv/k/cas", {"expected": None, "value": "v"}),
                                      ("POST", "/v1/cluster/learners", {"id": 9, "raft": "h:1", "http": "h:2"}),
                                      ("PUT", "/v1/cluster/membership", {"voters": [1, 2, 3]}),
                                      ("POST", "/v1/cluster/transfer-leader", {"to": lead})):
                st, b, h = await call(method, c.url(f) + path + "?x=1", req)
                assert st == 307, (method, path, st, b)
                assert h["Location"] == f"http://{leader_http}{path}?x=1"
                assert b["error"]["code"] == "redirect"
            assert c.sm(f).get("k") is None            # nothing was written through the follower
            async with KvClient([c.url(lead)]) as kv:
                rev = await kv.put("k", "v")
            # linearizable and lease reads on the follower: served there (no redirect), fresh
            for consistency in ("linearizable", "lease"):
                st, b, _ = await call("GET", f"{c.url(f)}/v1/kv/k?consistency={consistency}")
                assert (st, b) == (200, {"value": "v", "revision": rev}), consistency
            st, b, _ = await call("GET", c.url(f) + "/v1/kv?prefix=k")
            assert (st, b["items"]) == (200, [{"key": "k", "value": "v", "revision": rev}])
    run(body())


def test_bad_requests_answer_json_errors(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            u = c.url(lead)
            cases = [
                ("PUT", "/v1/kv/k", None, b"{not json", 400, "bad_request"),
                ("PUT", "/v1/kv/k", None, b"[1, 2]", 400, "bad_request"),
                ("PUT", "/v1/kv/k", {"value": 5}, None, 400, "bad_request"),
                ("PUT", "/v1/kv/k", {}, None, 400, "bad_request"),
                ("PUT", "/v1/kv/" + "x" * 5000, {"value": "v"}, None, 400, "bad_request"),
                ("POST", "/v1/kv/k/cas", {"value": "v"}, None, 400, "bad_request"),
                ("POST", "/v1/kv/k/cas", {"expected": "a", "expected_revision": 1, "value": "v"}, None, 400,
                 "bad_request"),
                ("POST", "/v1/kv/k/cas", {"expected": 1, "value": "v"}, None, 400, "bad_request"),
                ("POST", "/v1/kv/k/cas", {"expected_revision": -1, "value": "v"}, None, 400, "bad_request"),
                ("POST", "/v1/kv/k/cas", {"expected_revision": "1", "value": "v"}, None, 400, "bad_request"),
                ("GET", "/v1/kv/k?consistency=eventual", None, None, 400, "bad_request"),
                ("GET", "/v1/kv?limit=-3", None, None, 400, "bad_request"),
                ("GET", "/v1/kv/absent", None, None, 404, "key_not_found"),
                ("PUT", "/v1/kv/big", None, b'{"value": "' + b"x" * (2 << 20) + b'"}', 413, "too_large"),
                ("GET", "/v2/nothing", None, None, 404, "not_found"),
                ("PATCH", "/v1/kv/k", {"value": "v"}, None, 405, "method_not_allowed"),
                ("POST", "/v1/cluster/init", {"nodes": {"1": {"raft": "127.0.0.1:1", "http": "127.0.0.1:2"}}}, None,
                 409, "init_refused"),
                ("POST", "/v1/cluster/init", {"nodes": {"x": {"raft": "a:1", "http": "a:2"}}}, None, 400,
                 "bad_request"),
                ("POST", "/v1/cluster/init", {"nodes": {"1": {"raft": "nohost", "http": "a:2"}}}, None, 400,
                 "bad_request"),
                ("POST", "/v1/cluster/init", {"nodes": {}}, None, 400, "bad_request"),
                ("POST", "/v1/cluster/learners", {"id": "four", "raft": "a:1", "http": "a:2"}, None, 400,
                 "bad_request"),
                ("PUT", "/v1/cluster/membership", {"voters": [1, 2, 99]}, None, 400, "membership_learner_not_found"),
                ("PUT", "/v1/cluster/membership", {"voters": []}, None, 400, "bad_request"),
                ("PUT", "/v1/cluster/membership", {"voters": [1, True]}, None, 400, "bad_request"),
                ("PUT", "/v1/cluster/membership", {"voters": [1, 2, 3], "retain": "yes"}, None, 400, "bad_request"),
                ("PUT", "/v1/cluster/membership", {"voters": [1, 2, 3], "force": 1}, None, 400, "bad_request"),
                ("POST", "/v1/cluster/learners", {"id": 7, "raft": "a:1", "http": "a:2", "timeout": 0}, None, 400,
                 "bad_request"),
                ("POST", "/v1/cluster/learners", {"id": 7, "raft": "a:1", "http": "a:2", "timeout": "5"}, None, 400,
                 "bad_request"),
                ("POST", "/v1/cluster/learners", {"id": 7, "raft": "a:1", "http": "a:2", "timeout": 10 ** 6}, None,
                 400, "bad_request"),
                ("POST", "/v1/cluster/transfer-leader", {"to": 42}, None, 400, "bad_request"),
            ]
            for method, path, req, raw, status, code in cases:
                st, b, _ = await call(method, u + path, req, raw)
                assert (st, b["error"]["code"]) == (status, code), (method, path, req, raw, b)
                assert isinstance(b["error"]["message"], str) and b["error"]["message"]
            # the node keeps serving
            st, _, _ = await call("PUT", u + "/v1/kv/k", {"value": "ok"})
            assert st == 200
    run(body())


def test_no_leader_answers_503_and_local_reads_still_work(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient([c.url(lead)]) as kv:
                await kv.put("k", "v")
            await c.wait_applied(c.rafts[lead].metrics.last_applied.index)
            survivor = followers(c, lead)[0]
            for i in list(c.live()):
                if i != survivor:
                    await c.stop(i)
            await c.rafts[survivor].wait(WAIT).metrics(lambda m: m.current_leader is None, "no leader")
            u = c.url(survivor)
            st, b, _ = await call("PUT", u + "/v1/kv/k", {"value": "w"})
            assert st == 503 and b["error"]["code"] in ("no_leader", "no_quorum"), b
            st, b, _ = await call("GET", u + "/v1/kv/k")
            assert st == 503, b
            st, b, _ = await call("GET", u + "/v1/kv/k?consistency=local")
            assert (st, b["value"]) == (200, "v")
            st, b, _ = await call("GET", u + "/v1/cluster/status")
            assert st == 200 and b["leader"] is None and b["state"] in ("candidate", "follower")
    run(body())


def test_an_uninitialized_node_answers_503(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1], init=False)
            st, b, _ = await call("PUT", c.url(1) + "/v1/kv/k", {"value": "v"})
            assert st == 503 and b["error"]["code"] == "no_leader"
            st, b, _ = await call("GET", c.url(1) + "/v1/cluster/status")
            assert b["state"] == "not_member" and b["voters"] == []
            # init through the API, then it serves
            st, b, _ = await call("POST", c.url(1) + "/v1/cluster/init",
                                  {"nodes": {"1": {"raft": "local:1", "http": f"127.0.0.1:{c.servers[1].port}"}}})
            assert (st, b) == (200, {"voters": [1]})
            await c.rafts[1].wait(WAIT).state(ServerState.LEADER)
            async with KvClient([c.url(1)]) as kv:
                await kv.put("k", "v")
                assert (await kv.get("k")).value == "v"
    run(body())


def test_a_write_whose_outcome_is_unknown_answers_500(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3], request_timeout=1.0)
            for i in followers(c, lead):
                c.router.isolate(i)
            st, b, _ = await call("PUT", c.url(lead) + "/v1/kv/k", {"value": "v"})
            # Appended on the leader, never committed: the leader cannot tell the outcome.
            assert st == 500 and b["error"]["code"] == "outcome_unknown", b
    run(body())


def test_membership_routes_add_a_node_and_move_leadership(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient([c.url(lead)]) as kv:
                for i in range(20):
                    await kv.put(f"k{i}", str(i))
            s4 = await c.add_kv_node(4)
            st, b, _ = await call("POST", c.url(lead) + "/v1/cluster/learners",
                                  {"id": 4, "raft": "127.0.0.1:1", "http": f"127.0.0.1:{s4.port}"})
            assert st == 200 and b["learners"] == [4] and b["voters"] == [1, 2, 3], b
            assert c.sm(4).get("k19") is not None        # caught up when the call returned
            st, b, _ = await call("PUT", c.url(lead) + "/v1/cluster/membership", {"voters": [1, 2, 4], "retain": True})
            assert st == 200 and b["voters"] == [1, 2, 4] and b["learners"] == [3], b
            new_leader = 4 if lead != 4 else 1
            st, b, _ = await call("POST", c.url(lead) + "/v1/cluster/transfer-leader", {"to": new_leader})
            assert (st, b) == (200, {"leader": new_leader})
            st, b, _ = await call("GET", c.url(new_leader) + "/v1/cluster/status")
            assert b["state"] == "leader" and b["voters"] == [1, 2, 4] and b["learners"] == [3]
            assert b["nodes"]["4"]["http"] == f"127.0.0.1:{s4.port}"
            assert set(b["replication"]) == {"1", "2", "3", "4"} - {str(new_leader)}
    run(body())


def test_a_learner_that_is_not_running_answers_409_and_cannot_become_a_voter_unless_forced(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            u = c.url(lead)
            st, b, _ = await call("POST", u + "/v1/cluster/learners",
                                  {"id": 4, "raft": "127.0.0.1:1", "http": "127.0.0.1:2", "timeout": 0.5})
            assert (st, b["error"]["code"]) == (409, "learner_not_caught_up"), b
            assert "learner 4 was added but has not caught up within 0.5s" in b["error"]["message"]
            st, b, _ = await call("PUT", u + "/v1/cluster/membership", {"voters": [lead, 4]})
            assert (st, b["error"]["code"]) == (409, "not_enough_healthy_voters"), b
            assert "[4]" in b["error"]["message"]
            # Forced, the change goes ahead: the joint config is appended. It needs 4's acks, so
            # the leader then loses its quorum (check-quorum): the risk --force takes.
            st, b, _ = await call("PUT", u + "/v1/cluster/membership", {"voters": [lead, 4], "force": True})
            assert (st, b["error"]["code"]) == (500, "outcome_unknown"), b
            m = c.rafts[lead].metrics.membership
            assert m.is_joint and m.voter_ids == {1, 2, 3, 4}
    run(body())


def test_membership_in_progress_answers_409(run, monkeypatch):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            raft = c.rafts[lead]

            async def busy(*a, **kw):      # fault injection: the engine's refusal
                raise ChangeMembershipError("in_progress", "a change is under way")
            monkeypatch.setattr(raft, "change_membership", busy)
            st, b, _ = await call("PUT", c.url(lead) + "/v1/cluster/membership", {"voters": [1, 2]})
            assert (st, b["error"]["code"]) == (409, "membership_in_progress")
    run(body())


def test_every_raft_error_has_a_deliberate_status():
    assert error_status(ForwardToLeader()) == (503, "no_leader")
    assert error_status(ForwardToLeader(reason=ForwardToLeader.NO_QUORUM)) == (503, "no_quorum")
    assert error_status(ForwardToLeader(reason=ForwardToLeader.LEADER_TRANSFERRING)) == (503, "leader_transferring")
    assert error_status(OutcomeUnknown("truncated")) == (500, "outcome_unknown")
    assert error_status(ChangeMembershipError("in_progress")) == (409, "membership_in_progress")
    assert error_status(ChangeMembershipError("empty")) == (400, "membership_empty")
    assert error_status(ChangeMembershipError("not_enough_healthy_voters")) == (409, "not_enough_healthy_voters")
    assert error_status(InitializeError("x")) == (409, "init_refused")
    assert error_status(LeaseExpired("x")) == (503, "lease_expired")
    assert error_status(QuorumNotEnough("x")) == (503, "no_quorum")
    assert error_status(Timeout("x")) == (503, "timeout")
    assert error_status(InvalidArgument("x")) == (400, "bad_request")
    assert error_status(InvalidArgumentType("x")) == (400, "bad_request")
    assert error_status(Unreachable("x")) == (503, "unavailable")
    assert error_status(NetworkError("x")) == (503, "unavailable")
    assert error_status(Stopped()) == (503, "stopped")
    assert error_status(Fatal("disk")) == (503, "stopped")
    assert error_status(StorageError("x")) == (500, "storage_error")
    assert error_status(RaftError("x")) == (500, "internal")


def test_status_and_metrics(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                for i in range(5):
                    await kv.put(f"m{i}", "v")
                await kv.delete("m0")
            last = c.rafts[lead].metrics.last_log_index
            await c.wait_applied(last)
            st, s, _ = await call("GET", c.url(lead) + "/v1/cluster/status")
            assert st == 200
            assert {k: s[k] for k in ("id", "state", "leader", "last_log", "committed", "applied", "voters",
                                      "learners")} == {"id": lead, "state": "leader", "leader": lead, "last_log": last,
                                                       "committed": last, "applied": last, "voters": [1, 2, 3],
                                                       "learners": []}
            assert s["term"] >= 1
            fams = await scrape(c.url(lead))
            val = lambda name: fams[name].samples[0].value  # noqa: E731
            assert val("openraft_term") == s["term"]
            assert val("openraft_leader_id") == lead
            assert val("openraft_applied_index") == last and val("openraft_committed_index") == last
            assert val("openraft_last_log_index") == last
            assert val("kv_keys") == 4
            roles = {smp.labels["state"]: smp.value for smp in fams["openraft_server_state"].samples}
            assert roles["leader"] == 1 and sum(roles.values()) == 1
            lag = {smp.labels["target"]: smp.value for smp in fams["openraft_replication_lag_entries"].samples}
            assert set(lag) == {str(i) for i in followers(c, lead)} and all(v >= 0 for v in lag.values())
            writes = {(smp.name, smp.labels.get("op"), smp.labels.get("le")): smp.value
                      for smp in fams["kv_write_seconds"].samples}
            assert writes[("kv_write_seconds_count", "put", None)] == 5
            assert writes[("kv_write_seconds_count", "delete", None)] == 1
            assert writes[("kv_write_seconds_bucket", "put", "+Inf")] == 5
            assert "kv_snapshots" in fams and "openraft_log_purges" in fams
            # a follower reports its own state and no replication
            f = followers(c, lead)[0]
            ffams = await scrape(c.url(f))
            assert {smp.labels["state"]: smp.value for smp in ffams["openraft_server_state"].samples}["follower"] == 1
            assert ffams["openraft_replication_lag_entries"].samples == []
    run(body())


def test_snapshot_and_purge_counters_move(run):
    async def body():
        from kv_support import KvCluster as _C
        from cluster_support import FAST
        async with _C(config=FAST.replace(snapshot_policy=10, max_in_snapshot_log_to_keep=0)) as c:
            lead = await c.start_kv([1, 2, 3])
            async with KvClient([c.url(lead)]) as kv:
                for i in range(25):
                    await kv.put(f"s{i}", "v")
            await c.rafts[lead].wait(WAIT).snapshot(10)
            await c.rafts[lead].wait(WAIT).purged(1)
            fams = await scrape(c.url(lead))
            built = {smp.labels["kind"]: smp.value for smp in fams["kv_snapshots"].samples
                     if smp.name == "kv_snapshots_total"}
            assert built["built"] >= 1
            assert fams["openraft_snapshot_changes"].samples[0].value >= 1
            assert fams["openraft_log_purges"].samples[0].value >= 1
            assert fams["openraft_snapshot_index"].samples[0].value >= 10
    run(body())


def test_unknown_fields_too_large_values_and_members_added_twice(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3], max_value_bytes=100)
            u = c.url(lead)
            st, b, _ = await call("PUT", u + "/v1/kv/k", {"value": "v", "ttl": 5})
            assert (st, b["error"]["code"]) == (400, "unknown_field") and "'ttl'" in b["error"]["message"]
            st, b, _ = await call("POST", u + "/v1/kv/k/cas", {"value": "v", "expected": None, "lease": 1})
            assert (st, b["error"]["code"]) == (400, "unknown_field")
            st, b, _ = await call("PUT", u + "/v1/kv/k", {"value": "v" * 101})
            assert (st, b["error"]["code"]) == (413, "too_large") and "100 bytes" in b["error"]["message"]
            st, b, _ = await call("PUT", u + "/v1/kv/" + "k" * 101, {"value": "v"})
            assert (st, b["error"]["code"]) == (413, "too_large") and "key" in b["error"]["message"]
            st, b, _ = await call("PUT", u + "/v1/kv/k", {"value": "v" * 100})
            assert st == 200
            # a body over the server's size limit: 413 that names the value limit
            st, b, _ = await call("PUT", u + "/v1/kv/k", raw=b'{"value": "' + b"x" * (2 << 20) + b'"}')
            assert (st, b["error"]["code"]) == (413, "too_large") and "--max-value-bytes" in b["error"]["message"]
            # add-learner of a member: other addresses refused, the same ones a no-op that says so
            other = next(i for i in (1, 2, 3) if i != lead)
            node = c.rafts[lead].metrics.membership.get_node(other)
            st, b, _ = await call("POST", u + "/v1/cluster/learners", {"id": other, "raft": "127.0.0.1:1",
                                                                        "http": "127.0.0.1:2"})
            assert (st, b["error"]["code"]) == (409, "already_member")
            st, b, _ = await call("POST", u + "/v1/cluster/learners", {"id": other, "raft": node.addr,
                                                                        "http": node.data["http"]})
            assert st == 200 and "already a member" in b["unchanged"] and b["voters"] == [1, 2, 3]
    run(body())
