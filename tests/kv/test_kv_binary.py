"""The binary client protocol (serve --client; KvClient("orf://...")): every call through
KvClient, the same answers and errors as HTTP, redirects to the leader's client address,
many requests in flight on one connection, TLS, and bad input (malformed frames, foreign
bytes, bad requests) that costs only the sender its connection."""
import asyncio

import msgpack
import pytest

from kv_support import WAIT, KvCluster, cli, node_args, serve_tls, start_serve_cluster
from openraft_fast import Node
from openraft_fast._core import codec
from openraft_fast.kv import KvClient
from openraft_fast.kv.binary import OP_GET, OP_PUT, KvBinaryServer
from openraft_fast.kv.binary_client import BinaryChannel
from openraft_fast.kv.errors import KvError, KvOutcomeUnknown, KvRequestError


class BinaryCluster(KvCluster):
    """A KvCluster whose nodes also serve the binary protocol; `with_client_addr` puts each
    node's client address in the membership (where redirects point)."""

    def __init__(self, *args, with_client_addr=True, **kw):
        super().__init__(*args, **kw)
        self.binary = {}
        self.with_client_addr = with_client_addr

    async def add_kv_node(self, i, **server_kw):
        server = await super().add_kv_node(i, **server_kw)
        self.binary[i] = await KvBinaryServer(server, "127.0.0.1", 0).start()
        return server

    def member(self, i):
        data = {"http": f"127.0.0.1:{self.servers[i].port}"}
        if self.with_client_addr:
            data["client"] = f"127.0.0.1:{self.binary[i].port}"
        return Node(f"local:{i}", data)

    def orf(self, i):
        return self.binary[i].url

    def follower_endpoint(self, lead, protocol):
        """A follower's http:// or orf:// address (its writes are redirected to `lead`)."""
        f = next(i for i in sorted(self.servers) if i != lead)
        return self.url(f) if protocol == "http" else self.orf(f)

    async def shutdown(self):
        for b in self.binary.values():
            await b.close()
        await super().shutdown()


def test_every_key_value_call_over_the_binary_protocol(run):
    async def body():
        async with BinaryCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            async with KvClient([c.orf(follower)]) as kv:         # a follower first: redirected
                r1 = await kv.put("a", "1")
                assert (await kv.get("a")).value == "1" and (await kv.get("a")).revision == r1
                assert await kv.get("absent") is None
                assert (await kv.cas("a", "2", expected="1")).ok
                miss = await kv.cas("a", "3", expected="1")
                assert not miss.ok and miss.value == "2"
                rev = (await kv.get("a")).revision
                assert (await kv.cas("a", "4", expected_revision=rev)).ok
                await kv.put("a/b", "x")
                assert [i.key for i in await kv.list("a")] == ["a", "a/b"]
                assert [i.key for i in await kv.list("a", limit=1)] == ["a"]
                d = await kv.delete("a")
                assert d > rev and await kv.get("a") is None
                assert (await kv.get("a/b", consistency="lease")).value == "x"
                status = await kv.status()
                assert status["leader"] == lead and status["nodes"][str(lead)]["client"] == c.member(lead).data["client"]
                with pytest.raises(KvRequestError) as e:
                    await kv.get("k", consistency="eventual")
                assert e.value.code == "bad_request"
                with pytest.raises(ValueError):
                    await kv.init({1: ("a:1", "a:2")})          # cluster calls need an http endpoint
                with pytest.raises(ValueError):
                    await kv.backup()
                # The whole cluster's status: each member's health is asked over its HTTP address.
                members = await kv.members_status()
                assert members["leader"] == lead and [m["health"] for m in members["members"]] == ["ok"] * 3
            # The same answers as HTTP.
            async with KvClient(c.urls()) as http:
                assert (await http.get("a/b")).value == "x"
    run(body())


def test_a_follower_without_client_addresses_sends_the_client_on_to_another_endpoint(run):
    async def body():
        async with BinaryCluster(with_client_addr=False) as c:
            lead = await c.start_kv([1, 2, 3])
            ch = BinaryChannel("127.0.0.1", c.binary[next(i for i in (1, 2, 3) if i != lead)].port)
            status, b = await ch.call([OP_PUT, "k", "v"], WAIT)
            assert status == 307 and b["leader"] == lead and b["location"] is None
            ch.close()
            async with KvClient([c.orf(i) for i in (1, 2, 3)]) as kv:
                assert await kv.put("k", "v") > 0
    run(body())


def test_many_requests_in_flight_on_one_connection_are_matched_by_id(run):
    async def body():
        async with BinaryCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            ch = BinaryChannel("127.0.0.1", c.binary[lead].port)
            answers = await asyncio.gather(*(ch.call([OP_PUT, f"k{i}", str(i)], WAIT) for i in range(500)))
            revisions = [b["revision"] for s, b in answers]
            assert all(s == 200 for s, _ in answers) and len(set(revisions)) == 500
            got = await asyncio.gather(*(ch.call([OP_GET, f"k{i}", "local"], WAIT) for i in range(0, 500, 50)))
            assert [b["value"] for _, b in got] == [str(i) for i in range(0, 500, 50)]
            assert [b["revision"] for _, b in got] == revisions[::50]
            ch.close()
    run(body())


def test_bad_requests_get_errors_and_bad_bytes_cost_only_their_connection(run):
    async def body():
        async with BinaryCluster() as c:
            lead = await c.start_kv([1, 2, 3], max_value_bytes=100)
            ch = BinaryChannel("127.0.0.1", c.binary[lead].port)
            for req, code in (([99], "bad_request"), ([OP_PUT, "k"], "bad_request"), ([OP_PUT, "k", 5], "bad_request"),
                              ([OP_PUT, "", "v"], "bad_request"), ([OP_PUT, "k", "x" * 101], "too_large"),
                              ([OP_GET, "k", "eventual"], "bad_request")):
                status, b = await ch.call(req, WAIT)
                assert b["error"]["code"] == code and status in (400, 413), (req, b)
            # Not msgpack at all, in a well-formed frame.
            r, w = await asyncio.open_connection("127.0.0.1", c.binary[lead].port)
            w.write(codec.encode(codec.ClientRequest(b"\xc1\xc1"), 9))
            dec = codec.FrameDecoder()
            frames = []
            while not frames:
                frames = dec.feed(await asyncio.wait_for(r.read(65536), WAIT))
            corr, msg = frames[0]
            assert corr == 9 and msgpack.unpackb(msg.data)[0] == 400
            # Foreign bytes: that connection is closed; the channel above goes on.
            r2, w2 = await asyncio.open_connection("127.0.0.1", c.binary[lead].port)
            w2.write(b"GET / HTTP/1.1\r\n\r\n")
            assert await asyncio.wait_for(r2.read(), WAIT) == b""
            assert (await ch.call([OP_PUT, "still", "ok"], WAIT))[0] == 200
            ch.close()
    run(body())


def test_a_write_without_a_quorum_is_outcome_unknown_or_refused(run):
    async def body():
        async with BinaryCluster() as c:
            lead = await c.start_kv([1, 2, 3], request_timeout=0.4)
            for i in (1, 2, 3):
                if i != lead:
                    await c.stop(i)
            async with KvClient([c.orf(lead)], timeout=1.5, retry_ambiguous_writes=False) as kv:
                # Taken and timed out (500 outcome_unknown), or refused once the leader stepped
                # down (503, retried until the deadline).
                with pytest.raises(KvError) as e:
                    await kv.put("lost", "v")
                assert isinstance(e.value, KvOutcomeUnknown) or e.value.code == "unavailable", e.value
    run(body())


def test_serve_client_port_with_mutual_tls_and_the_cli(run, tmp_path):
    tls, paths = serve_tls(tmp_path)

    async def body():
        procs = await start_serve_cluster(str(tmp_path), ids=(1, 2), extra=tls, client=True)
        try:
            rc, _, err = await cli("cluster", "init", "--endpoint", "https://" + procs[1].http, *node_args(procs), *tls)
            assert rc == 0, err
            orfs = ",".join(f"orfs://{p.client}" for p in procs.values())
            rc, out, err = await cli("kv", "put", "secure", "yes", "--endpoints", orfs, *tls)
            assert rc == 0, err
            rc, out, err = await cli("kv", "get", "secure", "--endpoints", f"orfs://{procs[2].client}", *tls)
            assert rc == 0 and '"yes"' in out, err
            # Without a client certificate the server refuses the connection.
            rc, _, err = await cli("kv", "get", "secure", "--endpoints", orfs, "--tls-ca", paths["ca"],
                                   "--timeout", "1")
            assert rc == 1 and err.strip(), err
        finally:
            for p in procs.values():
                await p.terminate(10)
    run(body(), timeout=120)
