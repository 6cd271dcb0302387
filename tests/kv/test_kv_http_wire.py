"""The KV service's HTTP/1.1 server on the wire, with raw sockets: keep-alive and pipelining
(answers in request order, writes of one burst in one engine batch), malformed requests,
oversized headers and bodies, slow clients, Expect: 100-continue, and that a bad connection
never affects another."""
import asyncio
import json

from kv_support import WAIT, KvCluster


async def read_response(reader):
    """(status, headers, body) of one HTTP/1.1 response with a Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), WAIT)
    return status, headers, body


def put_request(key, value, extra=""):
    body = json.dumps({"value": value}).encode()
    return (f"PUT /v1/kv/{key} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def connect(c, lead):
    return await asyncio.open_connection("127.0.0.1", c.servers[lead].port)


def test_pipelined_requests_are_answered_in_order_on_one_connection(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            reader, writer = await connect(c, lead)
            # 50 puts, a get of an absent key, a bad put, then a get of a written key: one write.
            burst = b"".join(put_request(f"k{i}", f"v{i}") for i in range(50))
            burst += b"GET /v1/kv/absent?consistency=local HTTP/1.1\r\nHost: x\r\n\r\n"
            burst += put_request("bad", 5)
            burst += b"GET /v1/kv/k49 HTTP/1.1\r\nHost: x\r\n\r\n"
            writer.write(burst)
            revisions = []
            for i in range(50):
                status, headers, b = await read_response(reader)
                assert status == 200 and headers["content-type"].startswith("application/json"), (i, b)
                revisions.append(json.loads(b)["revision"])
            assert revisions == sorted(revisions) and len(set(revisions)) == 50
            status, _, b = await read_response(reader)
            assert (status, json.loads(b)["error"]["code"]) == (404, "key_not_found")
            status, _, b = await read_response(reader)
            assert (status, json.loads(b)["error"]["code"]) == (400, "bad_request")
            status, _, b = await read_response(reader)
            assert status == 200 and json.loads(b) == {"value": "v49", "revision": revisions[-1]}
            writer.close()
    run(body())


def test_connection_close_and_http10_end_the_connection_after_the_answer(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            reader, writer = await connect(c, lead)
            writer.write(put_request("a", "1", "Connection: close\r\n") + put_request("b", "2"))
            status, headers, _ = await read_response(reader)
            assert status == 200 and headers.get("connection") == "close"
            assert await asyncio.wait_for(reader.read(), WAIT) == b""      # closed; the second is not served
            reader, writer = await connect(c, lead)
            writer.write(b"GET /v1/health HTTP/1.0\r\n\r\n")
            status, headers, _ = await read_response(reader)
            assert status == 200 and await asyncio.wait_for(reader.read(), WAIT) == b""
    run(body())


def test_malformed_requests_get_a_json_400_and_only_their_connection_closes(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            good_r, good_w = await connect(c, lead)
            for junk in (b"HELLO\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02 garbage\r\n\r\n",
                         b"PUT /v1/kv/x HTTP/1.1\r\nContent-Length: abc\r\n\r\n"):
                reader, writer = await connect(c, lead)
                writer.write(junk)
                status, _, b = await read_response(reader)
                assert status == 400 and json.loads(b)["error"]["code"] == "bad_request", junk
                assert await asyncio.wait_for(reader.read(), WAIT) == b""
            good_w.write(put_request("still", "ok"))
            status, _, _ = await read_response(good_r)
            assert status == 200
    run(body())


def test_oversized_headers_and_bodies_are_refused_with_json(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3], max_value_bytes=1000)
            reader, writer = await connect(c, lead)
            writer.write(b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            status, _, b = await read_response(reader)
            assert (status, json.loads(b)["error"]["code"]) == (431, "headers_too_large")
            # A body over the limit is read and dropped: the connection goes on.
            limit = c.servers[lead].client_max_size
            reader, writer = await connect(c, lead)
            writer.write(put_request("k", "x" * (limit + 10)) + put_request("k", "fits"))
            status, _, b = await read_response(reader)
            assert (status, json.loads(b)["error"]["code"]) == (413, "too_large")
            assert "--max-value-bytes" in json.loads(b)["error"]["message"]
            status, _, _ = await read_response(reader)
            assert status == 200
            # A declared length far over the limit is not read: answered and closed.
            reader, writer = await connect(c, lead)
            writer.write(f"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: {100 * limit}\r\n\r\n".encode())
            status, _, b = await read_response(reader)
            assert (status, json.loads(b)["error"]["code"]) == (413, "too_large")
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
    run(body())


def test_a_slow_client_gets_408_and_others_are_served_meanwhile(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            server = c.servers[lead]
            server.http.header_timeout = 0.5
            slow_r, slow_w = await connect(c, lead)
            slow_w.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")        # and never the end of headers
            reader, writer = await connect(c, lead)
            for i in range(3):
                writer.write(put_request(f"k{i}", "v"))
                assert (await read_response(reader))[0] == 200
            status, _, b = await read_response(slow_r)
            assert (status, json.loads(b)["error"]["code"]) == (408, "request_timeout")
            assert await asyncio.wait_for(slow_r.read(), WAIT) == b""
    run(body())


def test_expect_100_continue_is_answered_before_the_body(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            reader, writer = await connect(c, lead)
            payload = json.dumps({"value": "v"}).encode()
            writer.write(f"PUT /v1/kv/e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {len(payload)}\r\n\r\n"
                         .encode())
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT) == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(payload)
            assert (await read_response(reader))[0] == 200
    run(body())


def test_a_write_with_no_outcome_in_time_answers_outcome_unknown(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3], request_timeout=0.4)
            for i in sorted(c.rafts):
                if i != lead:
                    await c.stop(i)
            reader, writer = await connect(c, lead)
            writer.write(put_request("lost", "v"))
            status, _, b = await read_response(reader)
            assert status in (500, 503), b
            code = json.loads(b)["error"]["code"]
            # Either the write was taken and then timed out, or the leader stepped down first.
            assert code in ("outcome_unknown", "no_leader", "no_quorum"), b
    run(body())


def test_put_bodies_decode_exactly_as_json_with_or_without_escapes(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            reader, writer = await connect(c, lead)
            values = ["plain", "", "é ünïcode", 'quote " and \\ backslash', "line\nbreak", "tab\tx", "\u2028"]
            for i, v in enumerate(values):
                writer.write(put_request(f"v{i}", v))
                assert (await read_response(reader))[0] == 200, v
                writer.write(f"GET /v1/kv/v{i} HTTP/1.1\r\n\r\n".encode())
                status, _, b = await read_response(reader)
                assert status == 200 and json.loads(b)["value"] == v
            for raw in (b'{"value": "a\x01b"}', b'{"value": "\xff\xfe"}', b'{"value": "x"} trailing',
                        b'{"value": "x",}', b'{"value":\x0b"x"}'):
                writer.write(b"PUT /v1/kv/bad HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(raw) + raw)
                status, _, b = await read_response(reader)
                assert (status, json.loads(b)["error"]["code"]) == (400, "bad_request"), raw
    run(body())
