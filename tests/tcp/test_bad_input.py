"""Malformed, oversized and foreign frames over raw sockets against a live node: that one
connection closes with a logged reason (refused handshakes get a reply saying why) and the
cluster goes on committing."""
import logging

from openraft_fast._core import codec
from openraft_fast.network.tcp import serve_tcp
from badinput import assert_accepts_handshake, cases, handshake, send_raw
from tcp_support import TCP_LOG, TcpCluster, tcp_log



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
                    logged = tcp_log(caplog)
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
            await assert_accepts_handshake(c.servers[lead].port, c.config.cluster_name, lead)
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
                logged = tcp_log(caplog)
                assert any("closing connection" in m and "malformed frame" in m for m in logged), logged
                await assert_accepts_handshake(small.port, c.config.cluster_name, lead)
            finally:
                await small.close()
            r = await c.write(lead, "after", 1)
            assert r.log_id.index > 0
    run(body())


def test_silent_connection_closed_after_handshake_timeout(run, caplog):
    async def body():
        caplog.set_level(logging.WARNING, logger=TCP_LOG)
        async with TcpCluster() as c:
            lead = await c.start([1, 2, 3])
            impatient = await serve_tcp(c.rafts[lead], "127.0.0.1", 0, handshake_timeout=0.2)
            try:
                out = await send_raw(impatient.port, b"", timeout=5.0)       # connects, says nothing
                assert out.closed and not out.replies
                logged = tcp_log(caplog)
                assert any("no handshake within 0.2s" in m for m in logged), logged
                # A peer that does its handshake in time stays connected past the timeout.
                await assert_accepts_handshake(impatient.port, c.config.cluster_name, lead)
            finally:
                await impatient.close()
    run(body())
