"""The TCP fault proxy: forwarding, per-link cuts (both and one way), isolation, delay, reset,
heal, bad input, and the subprocess version identifying connections by process (/proc)."""
import asyncio
import os
import socket
import time

import pytest

from openraft_fast.errors import InvalidArgument, InvalidArgumentType
from openraft_fast.testing.faultproxy import (
    FaultNetwork, FaultNetworkProcess, FaultProxyError, ProcessIdentifier)

TEST_TIMEOUT = 20.0
QUIET = 0.3     # how long we wait to see that nothing arrives


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, TEST_TIMEOUT)
    return asyncio.run(bounded())


class Upstream:
    """An echo server standing for node 9's raft port; records what it received."""

    def __init__(self):
        self.received = bytearray()
        self.server = None
        self.writers = []

    async def start(self):
        async def handle(reader, writer):
            self.writers.append(writer)
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    self.received += data
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()
        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self):
        self.server.close()
        for w in self.writers:
            w.close()


class Ports:
    """identify(): node ids by the connecting socket's port (test clients register theirs)."""

    def __init__(self):
        self.by_port = {}

    def __call__(self, peer, local_port):
        return self.by_port.get(peer[1])


async def connect(addr, ports=None, node=None):
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    if ports is not None:
        ports.by_port[s.getsockname()[1]] = node
    s.setblocking(False)
    await asyncio.get_running_loop().sock_connect(s, (host, int(port)))
    return await asyncio.open_connection(sock=s)


async def roundtrip(reader, writer, data):
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 5.0)


async def nothing_arrives(reader):
    try:
        data = await asyncio.wait_for(reader.read(100), QUIET)
    except asyncio.TimeoutError:
        return True
    return data == b""   # closed counts as "nothing delivered"


async def closed(reader):
    try:
        data = await asyncio.wait_for(reader.read(100), 5.0)
    except (ConnectionError, OSError):
        return True
    return data == b""


async def setup(ports):
    up = Upstream()
    addr = await up.start()
    net = FaultNetwork(identify=ports)
    proxy_addr = await net.add(9, addr)
    return up, net, proxy_addr


def test_forwards_both_ways_and_counts():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            assert addr == net.address(9) and addr.startswith("127.0.0.1:")
            r, w = await connect(addr, ports, 1)
            payload = os.urandom(200_000)
            assert await roundtrip(r, w, payload) == payload
            assert bytes(up.received) == payload
            st = net.stats()
            assert st["forwarded"] == 2 * len(payload) and st["dropped"] == 0
            assert st["identified"][9] == [1] and st["accepted"][9] == 1
            w.close()
        finally:
            await net.close()
            await up.close()
    run(body())


def test_cut_both_ways_drops_then_heal_closes_broken_connections():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            r1, w1 = await connect(addr, ports, 1)
            r2, w2 = await connect(addr, ports, 2)
            assert await roundtrip(r1, w1, b"hello") == b"hello"
            net.cut_both(1, 9)
            w1.write(b"lost")
            assert await nothing_arrives(r1)
            assert b"lost" not in up.received
            assert await roundtrip(r2, w2, b"other") == b"other"   # node 2's link is untouched
            assert net.stats()["dropped"] == 4
            net.heal()
            assert await closed(r1)            # its stream lost bytes: closed on heal
            assert await roundtrip(r2, w2, b"still") == b"still"
            r3, w3 = await connect(addr, ports, 1)
            assert await roundtrip(r3, w3, b"again") == b"again"
            for w in (w2, w3):
                w.close()
        finally:
            await net.close()
            await up.close()
    run(body())


def test_one_way_cut_towards_the_node():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            r, w = await connect(addr, ports, 1)
            net.cut(1, 9)                      # 1's messages do not reach 9
            w.write(b"request")
            await w.drain()
            assert await nothing_arrives(r)
            assert up.received == b""
        finally:
            await net.close()
            await up.close()
    run(body())


def test_one_way_cut_away_from_the_node():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            r, w = await connect(addr, ports, 1)
            net.cut(9, 1)                      # 9's answers do not reach 1, 1's requests do
            w.write(b"request")
            await w.drain()
            assert await nothing_arrives(r)
            assert bytes(up.received) == b"request"
            net.heal()
            assert await closed(r)
        finally:
            await net.close()
            await up.close()
    run(body())


def test_partition_and_isolate_cover_unidentified_connections():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            r1, w1 = await connect(addr, ports, 1)
            ru, wu = await connect(addr)       # an unidentified process
            net.partition([[1, 2], [9]])
            assert (1, 9) in net.cuts and (9, 2) in net.cuts
            assert await roundtrip(ru, wu, b"unidentified") == b"unidentified"  # not in any group
            w1.write(b"x")
            assert await nothing_arrives(r1)
            net.heal()
            net.isolate(9)
            wu.write(b"y")
            assert await nothing_arrives(ru)
            net.heal()
            assert await closed(ru)
        finally:
            await net.close()
            await up.close()
    run(body())


def test_delay_holds_bytes_and_keeps_order():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            r, w = await connect(addr, ports, 1)
            net.delay(1, 9, 0.2)
            t0 = time.monotonic()
            chunks = [bytes([i]) * 1000 for i in range(50)]
            for c in chunks:
                w.write(c)
                await asyncio.sleep(0)
            got = await asyncio.wait_for(r.readexactly(50_000), 5.0)
            assert time.monotonic() - t0 >= 0.2 * 0.95   # nothing came back before the delay
            assert got == b"".join(chunks)
            net.delay(None, None, 0)
            net.delays.clear()
            assert await roundtrip(r, w, b"fast") == b"fast"
            w.close()
        finally:
            await net.close()
            await up.close()
    run(body())


def test_reset_aborts_connections():
    async def body():
        ports = Ports()
        up, net, addr = await setup(ports)
        try:
            r, w = await connect(addr, ports, 1)
            assert await roundtrip(r, w, b"a") == b"a"
            assert net.reset(9) == 1
            assert await closed(r)
            assert net.reset() == 0
            r, w = await connect(addr, ports, 1)
            assert await roundtrip(r, w, b"b") == b"b"
            w.close()
        finally:
            await net.close()
            await up.close()
    run(body())


def test_upstream_down_closes_the_connection():
    async def body():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()                                     # nothing listens there
        net = FaultNetwork()
        try:
            addr = await net.add(3, dead)
            r, w = await connect(addr)
            assert await closed(r)
        finally:
            await net.close()
    run(body())


def test_bad_input_is_refused_with_typed_errors():
    async def body():
        net = FaultNetwork()
        try:
            with pytest.raises(InvalidArgument):
                await net.add(1, "nohost")
            with pytest.raises(InvalidArgument):
                await net.add(1, "127.0.0.1:99999")
            with pytest.raises(InvalidArgumentType):
                await net.add("1", "127.0.0.1:1")
            await net.add(1, "127.0.0.1:1")
            with pytest.raises(InvalidArgument):
                await net.add(1, "127.0.0.1:1")
            with pytest.raises(InvalidArgumentType):
                net.cut("a", 1)
            with pytest.raises(InvalidArgument):
                net.delay(1, 2, -1)
            with pytest.raises(InvalidArgument):
                net.delay(1, 2, float("nan"))
            with pytest.raises(InvalidArgument):
                net.reset(42)
        finally:
            await net.close()
    run(body())


def test_process_identifier_finds_the_owner_of_a_connection():
    async def body():
        ident = ProcessIdentifier({7: os.getpid(), 8: 1})
        up = Upstream()
        addr = await up.start()
        host, port = addr.rsplit(":", 1)
        r, w = await asyncio.open_connection(host, int(port))
        local = w.get_extra_info("sockname")
        assert ident(("127.0.0.1", local[1]), int(port)) == 7
        assert ident(("127.0.0.1", 1), int(port)) is None       # no such socket
        ident.set_pid(7, None)
        assert ident(("127.0.0.1", local[1]), int(port)) is None
        w.close()
        await up.close()
    run(body())


def test_subprocess_proxy_identifies_processes_and_cuts():
    async def body():
        up = Upstream()
        addr = await up.start()
        net = await FaultNetworkProcess.start()
        try:
            paddr = await net.add(9, addr)
            await net.set_pid(5, os.getpid())
            r, w = await connect(paddr)
            assert await roundtrip(r, w, b"ping") == b"ping"
            st = await net.stats()
            assert st["identified"]["9"] == [5]
            await net.cut(5, 9)
            w.write(b"dropped")
            assert await nothing_arrives(r)
            await net.heal()
            assert await closed(r)
            with pytest.raises(FaultProxyError):
                await net.cut("x", 9)
            with pytest.raises(FaultProxyError):
                await net.call("no_such_command")
            assert (await net.stats())["dropped"] == 7     # still serving after bad commands
        finally:
            await net.close()
            await up.close()
        assert net.proc.returncode is not None
    run(body())
