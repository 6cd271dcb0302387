"""The `kv` and `cluster` commands against live servers (an in-process cluster with real HTTP
servers; the CLI runs as a real process), bad arguments and unreachable endpoints: one line
on stderr, a non-zero exit, never a traceback."""
import json

import pytest

from kv_support import WAIT, KvCluster, cli, cli_sync, free_ports
from openraft_fast.kv import KvClient


def one_line_error(rc, out, err):
    assert rc != 0
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_kv_commands_against_a_live_cluster(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            ep = ",".join(c.urls())
            rc, out, err = await cli("kv", "put", "app/x", "1", "--endpoints", ep)
            assert rc == 0, err
            rev = json.loads(out)["revision"]
            assert c.sm(lead).get("app/x").revision == rev
            rc, out, err = await cli("kv", "get", "app/x", "--endpoints", ep)
            assert (rc, json.loads(out)) == (0, {"value": "1", "revision": rev})
            f = [i for i in c.rafts if i != lead][0]
            rc, out, err = await cli("kv", "get", "app/x", "--consistency", "local", "--endpoints", c.url(f))
            assert rc == 0 and json.loads(out)["value"] == "1"
            rc, out, err = await cli("kv", "cas", "app/x", "2", "--expected", "1", "--endpoints", c.url(f))
            assert rc == 0 and json.loads(out)["ok"] is True
            rc, out, err = await cli("kv", "cas", "app/x", "3", "--expected", "1", "--endpoints", ep)
            assert rc == 1 and json.loads(out) == {"ok": False, "value": "2", "revision": rev + 1}
            rc, out, err = await cli("kv", "cas", "app/y", "new", "--expected-absent", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["ok"] is True
            rc, out, err = await cli("kv", "cas", "app/y", "newer", "--expected-revision", "1", "--endpoints", ep)
            assert rc == 1 and json.loads(out)["ok"] is False
            rc, out, err = await cli("kv", "list", "--prefix", "app/", "--endpoints", ep)
            assert rc == 0 and [(i["key"], i["value"]) for i in json.loads(out)["items"]] == [("app/x", "2"),
                                                                                              ("app/y", "new")]
            rc, out, err = await cli("kv", "delete", "app/x", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["revision"] > rev
            rc, out, err = await cli("kv", "get", "app/x", "--endpoints", ep)
            assert "not found" in one_line_error(rc, out, err) and rc == 1
    run(body())


def test_cluster_commands_against_a_live_cluster(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            ep = ",".join(c.urls())
            rc, out, err = await cli("cluster", "status", "--endpoints", c.url(lead))     # one endpoint: every member
            assert rc == 0, err
            lines = out.strip().splitlines()
            assert lines[0].split() == ["ID", "ADDRESS", "ROLE", "TERM", "LAST_LOG", "APPLIED", "LAG", "HEALTH"]
            assert len(lines) == 4
            roles = {int(line.split()[0]): line.split()[2] for line in lines[1:]}
            assert roles[lead] == "leader" and sorted(roles.values()) == ["follower", "follower", "leader"]
            assert all(line.split()[-1] == "ok" for line in lines[1:])
            s4 = await c.add_kv_node(4)
            rc, out, err = await cli("cluster", "add-learner", "--id", "4", "--raft", "127.0.0.1:1",
                                     "--http", f"127.0.0.1:{s4.port}", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["learners"] == [4], err
            rc, out, err = await cli("cluster", "change-membership", "--voters", "1,2,3,4", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["voters"] == [1, 2, 3, 4], err
            to = 4 if lead != 4 else 1
            rc, out, err = await cli("cluster", "transfer-leader", "--to", str(to), "--endpoints", ep)
            assert (rc, json.loads(out)) == (0, {"leader": to}), err
            rc, out, err = await cli("cluster", "status", "--json", "--endpoints", c.url(1))
            status = json.loads(out)
            assert status["leader"] == to and [m["id"] for m in status["members"]] == [1, 2, 3, 4]
            assert {m["id"]: m["role"] for m in status["members"]}[to] == "leader"
            assert rc == 0 and status["healthy"] is True, (out, err)
            # a member that stops: its row says so, and the exit code is 1
            await c.stop(2 if to != 2 else 3)
            rc, out, err = await cli("cluster", "status", "--json", "--endpoints", c.url(to), "--timeout", "1")
            rows = {m["id"]: m for m in json.loads(out)["members"]}
            gone = 2 if to != 2 else 3
            assert rc == 1 and rows[gone]["health"] == "unreachable" and "not every member is healthy" in err
            assert all(rows[i]["health"] == "ok" for i in rows if i != gone)
    run(body())


def test_cluster_init_through_the_cli(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2], init=False)
            nodes = [f"{i}=local:{i},127.0.0.1:{c.servers[i].port}" for i in (1, 2)]
            rc, out, err = await cli("cluster", "init", "--endpoint", c.url(1), "--node", nodes[0], "--node", nodes[1])
            assert (rc, json.loads(out)) == (0, {"voters": [1, 2]}), err
            await c.wait_leader([1, 2])
            rc, out, err = await cli("kv", "put", "k", "v", "--endpoints", c.url(2))
            assert rc == 0, err
            rc, out, err = await cli("cluster", "init", "--endpoint", c.url(1), "--node", nodes[0])
            assert "init_refused" in one_line_error(rc, out, err)
    run(body())


@pytest.mark.parametrize("argv, expect", [
    (["kv", "put", "k", "--endpoints", "127.0.0.1:1"], "exactly one"),
    (["kv", "put", "k", "v", "--file", "x", "--endpoints", "127.0.0.1:1"], "exactly one"),
    (["kv", "put", "k", "v", "--endpoints", "http://"], "bad endpoint"),
    (["kv", "put", "k", "v", "--endpoints", "ftp://h:1"], "bad endpoint"),
    (["kv", "get", "k", "--endpoints", "127.0.0.1:1", "--consistency", "eventual"], "invalid choice"),
    (["kv", "cas", "k", "v", "--endpoints", "127.0.0.1:1"], "one of the arguments"),
    (["kv", "cas", "k", "v", "--expected", "a", "--expected-absent", "--endpoints", "127.0.0.1:1"], "not allowed"),
    (["kv", "list", "--limit", "-1", "--endpoints", "127.0.0.1:1"], "integer >= 0"),
    (["kv", "put", "k", "v", "--endpoints", "127.0.0.1:1", "--timeout", "0"], "seconds > 0"),
    (["kv", "put", "", "v", "--endpoints", "127.0.0.1:1"], "empty"),
    (["kv"], "required"),
    (["cluster", "init", "--node", "1=a:1,b:2"], "--endpoint"),
    (["cluster", "init", "--endpoint", "127.0.0.1:1", "--node", "x=a:1"], "ID=RAFT"),
    (["cluster", "change-membership", "--voters", "1,b", "--endpoints", "127.0.0.1:1"], "node ids"),
    (["cluster", "add-learner", "--id", "4", "--raft", "nohost", "--http", "a:1", "--endpoints", "127.0.0.1:1"],
     "HOST:PORT"),
    (["serve", "--id", "1", "--raft", "127.0.0.1:x", "--http", "127.0.0.1:1", "--data", "/tmp/x"], "HOST:PORT"),
    (["serve", "--id", "1"], "required"),
])
def test_bad_arguments_fail_in_one_line(argv, expect):
    rc, out, err = cli_sync(*argv)
    line = one_line_error(rc, out, err)
    assert rc == 2 and expect in line, (rc, line)


def test_missing_endpoints_name_the_option_and_the_variable(monkeypatch):
    monkeypatch.delenv("OPENRAFT_FAST_ENDPOINTS", raising=False)
    for argv in (["cluster", "status"], ["kv", "get", "k"]):
        rc, out, err = cli_sync(*argv)
        line = one_line_error(rc, out, err)
        assert rc == 2 and "--endpoints" in line and "OPENRAFT_FAST_ENDPOINTS" in line, line


def test_unreachable_endpoints_fail_in_one_line(run):
    async def body():
        dead = ",".join(f"http://127.0.0.1:{p}" for p in free_ports(2))
        for argv in (["kv", "put", "k", "v"], ["kv", "get", "k"], ["kv", "list"], ["cluster", "status"],
                     ["cluster", "transfer-leader", "--to", "1"]):
            rc, out, err = await cli(*argv, "--endpoints", dead, "--timeout", "1")
            line = one_line_error(rc, out, err)
            assert rc == 1 and ("unavailable" in line or "no endpoint answered" in line), line
            assert "cannot connect" in line
    run(body())


@pytest.mark.parametrize("argv", [["kv", "get", "k", "--endpoints", "127.0.0.1:1"],
                                  ["serve", "--id", "1", "--raft", "127.0.0.1:1", "--http", "127.0.0.1:2",
                                   "--data", "/nonexistent/never-created"]])
def test_without_the_kv_extra_the_commands_say_what_to_install(argv):
    import subprocess
    import sys
    from kv_support import ROOT
    code = ("import sys; sys.modules['aiohttp'] = None\n"       # as if aiohttp were not installed
            "from openraft_fast.cli.main import main\n"
            f"sys.exit(main({argv!r}))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = one_line_error(p.returncode, p.stdout, p.stderr)
    assert "pip install 'openraft-fast[kv]'" in line and p.returncode == 1


def test_put_takes_the_value_from_a_file_or_stdin(run, tmp_path):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            ep = c.url(lead)
            big = "x" * 200_000 + "é\n"
            path = tmp_path / "value.txt"
            path.write_text(big, encoding="utf-8")
            rc, out, err = await cli("kv", "put", "f", "--file", str(path), "--endpoints", ep)
            assert rc == 0, err
            rc, out, err = await cli("kv", "get", "f", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["value"] == big
            rc, out, err = await cli("kv", "put", "s", "-", "--endpoints", ep, stdin="from stdin\n".encode())
            assert rc == 0, err
            rc, out, err = await cli("kv", "get", "s", "--endpoints", ep)
            assert json.loads(out)["value"] == "from stdin\n"
            rc, out, err = await cli("kv", "put", "g", "--file", str(tmp_path / "missing"), "--endpoints", ep)
            assert rc == 2 and "cannot read --file" in one_line_error(rc, out, err)
    run(body())


def test_remove_node_voter_learner_and_the_leader_itself(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            s4 = await c.add_kv_node(4)
            ep = ",".join(c.urls([1, 2, 3]))
            rc, out, err = await cli("cluster", "add-learner", "--id", "4", "--raft", "127.0.0.1:4",
                                     "--http", f"127.0.0.1:{s4.port}", "--endpoints", ep)
            assert rc == 0, err
            # a learner
            rc, out, err = await cli("cluster", "remove-node", "--id", "4", "--endpoints", ep)
            assert rc == 0 and json.loads(out)["learners"] == [] and json.loads(out)["voters"] == [1, 2, 3], err
            # the leader itself: it hands over first, the call follows the new leader
            rc, out, err = await cli("cluster", "remove-node", "--id", str(lead), "--endpoints", c.url(lead))
            assert rc == 0, err
            left = sorted(i for i in (1, 2, 3) if i != lead)
            assert json.loads(out)["voters"] == left
            new = await c.wait_leader(left)
            assert new != lead
            await c.rafts[lead].wait(WAIT).metrics(lambda m: m.state.name == "NOT_MEMBER", "not_member")
            # a node in no membership: nothing to do
            rc, out, err = await cli("cluster", "remove-node", "--id", "9", "--endpoints", c.url(new))
            assert rc == 0 and json.loads(out)["voters"] == left, err
            # a voter of the remaining two: the healthy-quorum check passes ({new} alone is a quorum of {new})
            other = next(i for i in left if i != new)
            rc, out, err = await cli("cluster", "remove-node", "--id", str(other), "--endpoints", c.url(new))
            assert rc == 0 and json.loads(out)["voters"] == [new], err
            async with KvClient([c.url(new)]) as kv:
                await kv.put("still", "serving")
    run(body())
