"""Malformed, oversized and foreign frames over raw sockets against a live node: that one
connection closes with a logged reason (refused handshakes get a reply saying why) and the
cluster goes on committing."""
import logging

from openraft_fast._core import codec
from openraft_fast.network.tcp import serve_tcp
from badinput import cases, handshake, send_raw
from tcp_support import TcpCluster

TCP_LOG = "openraft_fast.network.tcp"


def test_each_bad_input_closes_one_connection_and_cluster_commits(run, caplog):
    async def body():
        caplog.set_level(logging.WARNING, logger=TCP_LOG)
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            for target in (lead, next(i for i in (1, 2, 3) if i != lead)):
                for case in cases(c.config.cluster_name, target):
                    caplog.clear()
                    out = await send_raw(c.servers[target].port, case.data, case.half_close)
                    assert out.closed, f"{case.name}: the node kept the connection open"
                    logged = [r.getMessage() for r in caplog.records if r.name == TCP_LOG]
                    assert any("closing connection" in m and case.log_reason in m for m in logged), \
                        f"{case.name}: no log line with {case.log_reason!r}: {logged}"
                    if case.reply_reason is not None:
                        assert len(out.replies) == 1, f"{case.name}: {out.replies}"
                        corr, reply = out.replies[0]
                        assert type(reply) is codec.HandshakeReply and not reply.ok
                        assert case.reply_reason in reply.reason, f"{case.name}: {reply.reason}"
                    r = await c.write(lead, case.name, target)
                    assert r.log_id.index > 0
            # A good handshake is still accepted.
            out = await send_raw(c.servers[lead].port, handshake(c.config.cluster_name, lead), timeout=0.3)
            assert not out.closed and out.replies[0][1].ok
    run(body())


def test_oversized_frame_refused_from_its_header(run, caplog):
    """The frame limit holds from the header alone: the node does not wait for (or buffer)
    the body."""
    async def body():
        caplog.set_level(logging.WARNING, logger=TCP_LOG)
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            small = await serve_tcp(c.rafts[lead], "127.0.0.1", 0, max_frame=1024)
            try:
                frame = handshake("x" * 4096, lead)
                out = await send_raw(small.port, frame[:codec.HEADER_SIZE])
                assert out.closed
                logged = [r.getMessage() for r in caplog.records if r.name == TCP_LOG]
                assert any("closing connection" in m and "malformed frame" in m for m in logged), logged
                out = await send_raw(small.port, handshake(c.config.cluster_name, lead), timeout=0.3)
                assert not out.closed and out.replies[0][1].ok
            finally:
                await small.close()
            r = await c.write(lead, "after", 1)
            assert r.log_id.index > 0
    run(body())
