"""Regression (found by the chaos run): a put whose kept-alive connection breaks after the request
was sent must end as KvOutcomeUnknown (retry_ambiguous_writes=False), never be sent to another node.

aiohttp resends a PUT once on a new connection in that case; when the node is gone the resend
cannot connect, and that connect error used to read as "never sent": the client retried the
put on the next endpoint and the write was applied twice (two revisions for one value)."""
import asyncio
import json

import pytest

from openraft_fast.kv import KvOutcomeUnknown
from openraft_fast.kv.client import KvClient


class RawNode:
    """A minimal HTTP/1.1 node: answers GETs (keep-alive); on a PUT it records it and, if
    `dies_on_put`, stops listening and drops the connection without an answer (a SIGKILL)."""

    def __init__(self, dies_on_put: bool) -> None:
        self.dies_on_put = dies_on_put
        self.puts = []
        self.server = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method = lines[0].split()[0]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                if method == "PUT":
                    self.puts.append(body)
                    if self.dies_on_put:
                        self.server.close()
                        writer.transport.abort()
                        return
                    out = json.dumps({"revision": len(self.puts)}).encode()
                else:
                    out = json.dumps({"value": "a", "revision": 1}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(out)).encode() + b"\r\n\r\n" + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_put_on_a_connection_that_breaks_after_sending_is_ambiguous_not_retried():
    async def body():
        dying, other = RawNode(dies_on_put=True), RawNode(dies_on_put=False)
        urls = [await dying.start(), await other.start()]
        async with KvClient(urls, timeout=3.0, request_timeout=1.0, retry_ambiguous_writes=False) as kv:
            assert (await kv.get("k")).value == "a"     # opens the kept-alive connection to `dying`
            with pytest.raises(KvOutcomeUnknown):
                await kv.put("k", "v")
        assert len(dying.puts) == 1
        assert other.puts == [], "the put was sent again to another node after it may have applied"
        other.server.close()
    asyncio.run(asyncio.wait_for(body(), 20.0))
