"""A TCP fault proxy for chaos tests: one listening port in front of each node's raft port.

Nodes are told each other's *proxy* addresses, so every raft connection into node D goes through
D's proxy. The proxy learns which node opened a connection (`identify`: by default the owner of
the connecting socket, found in /proc, among the node pids it was given), so rules can be set per
ordered pair of nodes:

- `cut(src, dst)`: messages from src no longer reach dst. In D's proxy, a connection opened by C
  carries C's requests to D (C -> D) and D's answers (D -> C); so cut(C, D) drops the C -> D bytes
  of connections C opened into D, and the D -> C... bytes of connections D opened into C are the
  ones of cut(D, C). Dropped bytes are discarded, not queued: the stream is then broken, so when
  the cut heals every connection that lost bytes is closed (both ends), and the nodes reconnect.
  A connection from an unidentified process is only affected by `isolate` and `reset`.
- `partition(groups)`: cuts both ways between groups; `isolate(node)`: one node alone.
- `delay(src, dst, seconds)`: bytes from src to dst are held that long (order kept).
- `reset(node=None)`: abort every connection (into one node's proxy, or all) with an RST.
- `heal()`: remove every cut and delay (and close the connections that lost bytes).

`FaultNetwork` runs in the caller's event loop; `FaultNetworkProcess` runs one in a subprocess
(`python -m openraft_fast.testing.faultproxy`) controlled by JSON lines on its stdin/stdout, so
the proxy never competes with the test's clients for the GIL.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys
from collections import deque
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from openraft_fast.errors import InvalidArgument, InvalidArgumentType

Identify = Callable[[Tuple[str, int], int], Optional[int]]


def _split_addr(addr: str) -> Tuple[str, int]:
    if not isinstance(addr, str):
        raise InvalidArgumentType(f"an address must be a 'host:port' str, got {type(addr).__name__}")
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidArgument(f"bad address {addr!r}: expected HOST:PORT")
    return host, int(port)


class ProcessIdentifier:
    """Which node (by pid) owns the other end of a loopback connection (Linux /proc)."""

    def __init__(self, pids: Optional[Dict[int, int]] = None) -> None:
        self.pids: Dict[int, int] = dict(pids or {})

    def set_pid(self, node: int, pid: Optional[int]) -> None:
        if pid is None:
            self.pids.pop(node, None)
        else:
            self.pids[node] = pid

    def __call__(self, peer: Tuple[str, int], local_port: int) -> Optional[int]:
        inode = _socket_inode(peer[1], local_port)
        if inode is None:
            return None
        target = f"socket:[{inode}]"
        for node, pid in list(self.pids.items()):
            fd_dir = f"/proc/{pid}/fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"{fd_dir}/{fd}") == target:
                        return node
                except OSError:
                    continue
        return None


def _socket_inode(port: int, remote_port: int) -> Optional[int]:
    """The inode of the TCP socket whose local port is `port` and remote port `remote_port`."""
    want_local = f":{port:04X}"
    want_remote = f":{remote_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) > 9 and parts[1].endswith(want_local) and parts[2].endswith(want_remote):
                        return int(parts[9])
        except OSError:
            continue
    return None


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; forwards what it reads to the other side."""

    def __init__(self, conn: "_Connection", inbound: bool) -> None:
        self.conn = conn
        self.inbound = inbound          # the accepted socket (the connecting node's side)
        self.transport: Optional[asyncio.Transport] = None
        self.peer: Optional["_Side"] = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.inbound:
            self.conn.proxy.accepted_from(self.conn, transport)
        else:
            self.conn.upstream_ready()     # first the bytes read while connecting, in order

    def data_received(self, data: bytes) -> None:
        self.conn.forward(self, data)

    def eof_received(self):
        self.conn.close()
        return False

    def connection_lost(self, exc) -> None:
        self.conn.close()

    # backpressure: when the side we write to is full, stop reading from the other one
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Pipe:
    """One direction of a connection, with an optional delay that keeps byte order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque = deque()
        self.timer: Optional[asyncio.TimerHandle] = None
        self.last_due = 0.0

    def send(self, out: _Side, data: bytes, delay: float) -> None:
        if delay <= 0 and not self.queue:
            if out.transport is not None:
                out.transport.write(data)
            return
        due = max(self.loop.time() + delay, self.last_due)
        self.last_due = due
        self.queue.append((due, out, data))
        if self.timer is None:
            self.timer = self.loop.call_at(due, self._drain)

    def _drain(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _, out, data = self.queue.popleft()
            if out.transport is not None and not out.transport.is_closing():
                out.transport.write(data)
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._drain)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()


class _Connection:
    """An accepted connection into `proxy`, opened by node `src` (None: unidentified)."""

    def __init__(self, proxy: "_Proxy", src: Optional[int]) -> None:
        self.proxy = proxy
        self.src = src
        self.inbound = _Side(self, True)
        self.outbound = _Side(self, False)
        self.inbound.peer, self.outbound.peer = self.outbound, self.inbound
        loop = proxy.net.loop
        self.pipes = {True: _Pipe(loop), False: _Pipe(loop)}
        self.damaged = False            # bytes were dropped: the stream is broken
        self.closed = False
        self.pending: List[bytes] = []  # read from the node before the upstream connected

    def forward(self, side: _Side, data: bytes) -> None:
        if self.closed:
            return
        dst_node = self.proxy.node
        # bytes read on the accepted socket flow src -> proxied node, else the other way
        a, b = (self.src, dst_node) if side.inbound else (dst_node, self.src)
        net = self.proxy.net
        if net.blocked(a, b):
            self.damaged = True
            self.proxy.net.bytes_dropped += len(data)
            return
        net.bytes_forwarded += len(data)
        out = side.peer
        assert out is not None
        if out is self.outbound and out.transport is None:
            self.pending.append(data)
            return
        self.pipes[side.inbound].send(out, data, net.delay_of(a, b))

    def upstream_ready(self) -> None:
        if self.pending and self.outbound.transport is not None:
            data, self.pending = b"".join(self.pending), []
            self.outbound.transport.write(data)

    def close(self, rst: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for pipe in self.pipes.values():
            pipe.cancel()
        for side in (self.inbound, self.outbound):
            t = side.transport
            if t is None:
                continue
            if rst:
                sock = t.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
            t.abort()
        self.proxy.connections.discard(self)


class _Proxy:
    """One listening socket in front of one node's raft port."""

    def __init__(self, net: "FaultNetwork", node: int, upstream: Tuple[str, int]) -> None:
        self.net = net
        self.node = node
        self.upstream = upstream
        self.server: Optional[asyncio.AbstractServer] = None
        self.port = 0
        self.connections: Set[_Connection] = set()
        self.accepted = 0

    async def start(self, host: str, port: int) -> None:
        self.server = await self.net.loop.create_server(self._accept, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    def _accept(self) -> asyncio.Protocol:
        return _Connection(self, None).inbound

    def accepted_from(self, conn: _Connection, transport: asyncio.BaseTransport) -> None:
        """A node connected: learn which one, then connect to the proxied node."""
        peer = transport.get_extra_info("peername")
        if self.net.identify is not None and peer:
            try:
                conn.src = self.net.identify(peer[:2], self.port)
            except Exception:     # identification is best effort: unidentified
                conn.src = None
        self.accepted += 1
        self.connections.add(conn)
        asyncio.ensure_future(self._connect_upstream(conn))

    async def _connect_upstream(self, conn: _Connection) -> None:
        try:
            await self.net.loop.create_connection(lambda: conn.outbound, *self.upstream)
        except OSError:
            conn.close()          # the node is down: the connecting node sees the connection close
            return
        if conn.closed and conn.outbound.transport is not None:
            conn.outbound.transport.abort()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for c in list(self.connections):
            c.close()
        if self.server is not None:
            await self.server.wait_closed()


class FaultNetwork:
    """Fault proxies for a set of nodes, with per-link rules (see the module docstring)."""

    def __init__(self, identify: Optional[Identify] = None, host: str = "127.0.0.1") -> None:
        self.identify = identify
        self.host = host
        self.proxies: Dict[int, _Proxy] = {}
        self.cuts: Set[Tuple[Optional[int], Optional[int]]] = set()
        self.isolated: Set[int] = set()
        self.delays: Dict[Tuple[int, int], float] = {}
        self.default_delay = 0.0
        self.bytes_forwarded = 0
        self.bytes_dropped = 0
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ proxies
    async def add(self, node: int, upstream: str, port: int = 0) -> str:
        """Start a proxy for `node` forwarding to `upstream` ("host:port"); returns its address."""
        if not isinstance(node, int) or isinstance(node, bool):
            raise InvalidArgumentType(f"a node id must be an int, got {type(node).__name__}")
        if node in self.proxies:
            raise InvalidArgument(f"node {node} already has a proxy")
        self.loop = asyncio.get_running_loop()
        proxy = _Proxy(self, node, _split_addr(upstream))
        await proxy.start(self.host, port)
        self.proxies[node] = proxy
        return f"{self.host}:{proxy.port}"

    def address(self, node: int) -> str:
        return f"{self.host}:{self._proxy(node).port}"

    def _proxy(self, node: int) -> _Proxy:
        try:
            return self.proxies[node]
        except KeyError:
            raise InvalidArgument(f"no proxy for node {node}") from None

    async def close(self) -> None:
        for p in list(self.proxies.values()):
            await p.close()
        self.proxies.clear()

    # ------------------------------------------------------------------ rules
    def blocked(self, src: Optional[int], dst: Optional[int]) -> bool:
        if src in self.isolated or dst in self.isolated:
            return True
        return (src, dst) in self.cuts

    def delay_of(self, src: Optional[int], dst: Optional[int]) -> float:
        if not self.delays:
            return self.default_delay
        return self.delays.get((src, dst), self.default_delay)  # type: ignore[arg-type]

    def cut(self, src: int, dst: int) -> None:
        """One way: messages from `src` no longer reach `dst`."""
        self._check_nodes(src, dst)
        self.cuts.add((src, dst))

    def cut_both(self, a: int, b: int) -> None:
        self.cut(a, b)
        self.cut(b, a)

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Cut both ways between every two groups (nodes in no group keep all their links)."""
        groups = [list(g) for g in groups]
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                for a in g:
                    for b in h:
                        self.cut_both(a, b)

    def isolate(self, node: int) -> None:
        """Cut `node` off from everything, unidentified connections included."""
        self._check_nodes(node)
        self.isolated.add(node)

    def delay(self, src: Optional[int], dst: Optional[int], seconds: float) -> None:
        """Hold bytes from `src` to `dst` for `seconds` (None, None: every link)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 3600:
            raise InvalidArgument(f"delay must be a number of seconds in [0, 3600), got {seconds!r}")
        if src is None and dst is None:
            self.default_delay = float(seconds)
        else:
            self._check_nodes(src, dst)
            self.delays[(src, dst)] = float(seconds)  # type: ignore[index]

    def heal(self) -> None:
        """Remove every cut, isolation and delay; close the connections that lost bytes."""
        self.cuts.clear()
        self.isolated.clear()
        self.delays.clear()
        self.default_delay = 0.0
        for p in self.proxies.values():
            for c in list(p.connections):
                if c.damaged:
                    c.close()

    def reset(self, node: Optional[int] = None) -> int:
        """Abort every connection (into `node`'s proxy, or all) with an RST; returns how many."""
        proxies = [self._proxy(node)] if node is not None else list(self.proxies.values())
        n = 0
        for p in proxies:
            for c in list(p.connections):
                c.close(rst=True)
                n += 1
        return n

    def stats(self) -> Dict[str, object]:
        return {"forwarded": self.bytes_forwarded, "dropped": self.bytes_dropped,
                "connections": {n: len(p.connections) for n, p in self.proxies.items()},
                "accepted": {n: p.accepted for n, p in self.proxies.items()},
                "identified": {n: sorted({c.src for c in p.connections if c.src is not None})
                               for n, p in self.proxies.items()},
                "cuts": sorted(self.cuts), "isolated": sorted(self.isolated)}

    def _check_nodes(self, *nodes) -> None:
        for n in nodes:
            if not isinstance(n, int) or isinstance(n, bool):
                raise InvalidArgumentType(f"a node id must be an int, got {n!r}")


# ---------------------------------------------------------------------- subprocess control

_COMMANDS = ("add", "cut", "cut_both", "partition", "isolate", "delay", "heal", "reset", "stats", "set_pid", "address")


async def _serve_control(reader: asyncio.StreamReader, write: Callable[[bytes], None]) -> None:
    ident = ProcessIdentifier()
    net = FaultNetwork(identify=ident)
    write(b'{"ready": true}\n')
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            args = req.get("args", {})
            if cmd not in _COMMANDS or not isinstance(args, dict):
                raise InvalidArgument(f"unknown command {cmd!r}")
            if cmd == "add":
                result = await net.add(**args)
            elif cmd == "set_pid":
                ident.set_pid(**args)
                result = None
            else:
                result = getattr(net, cmd)(**args)
            reply = {"ok": True, "result": result}
        except Exception as exc:       # every bad command gets a typed answer, the proxy stays up
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        write(json.dumps(reply, default=str).encode() + b"\n")
    await net.close()


def _child_main() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        out = sys.stdout.buffer

        def write(b: bytes) -> None:
            out.write(b)
            out.flush()
        await _serve_control(reader, write)
    try:
        import uvloop
        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


class FaultProxyError(InvalidArgument):
    """The proxy process refused a command (the message says why) or is gone."""


class FaultNetworkProcess:
    """A FaultNetwork in a subprocess. `await FaultNetworkProcess.start()`, then
    `await net.add(node, upstream)`, `await net.cut(1, 2)`, ..., `await net.close()`.
    Tell it the nodes' pids (`set_pid`) so it can tell their connections apart."""

    def __init__(self, proc: asyncio.subprocess.Process, timeout: float) -> None:
        self.proc = proc
        self.timeout = timeout
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, timeout: float = 10.0) -> "FaultNetworkProcess":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "openraft_fast.testing.faultproxy",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self = cls(proc, timeout)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)  # type: ignore[union-attr]
            if json.loads(line or b"{}").get("ready") is not True:
                raise FaultProxyError(f"fault proxy process did not start: {line!r}")
        except BaseException:
            await self.close()
            raise
        return self

    async def call(self, cmd: str, **args):
        async with self._lock:
            if self.proc.returncode is not None:
                raise FaultProxyError(f"fault proxy process exited ({self.proc.returncode})")
            self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")  # type: ignore[union-attr]
            await self.proc.stdin.drain()  # type: ignore[union-attr]
            line = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout)  # type: ignore[union-attr]
        if not line:
            raise FaultProxyError("fault proxy process closed its output")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise FaultProxyError(f"{cmd}: {reply.get('error')}: {reply.get('message')}")
        return reply.get("result")

    async def add(self, node: int, upstream: str, port: int = 0) -> str:
        return await self.call("add", node=node, upstream=upstream, port=port)

    async def set_pid(self, node: int, pid: Optional[int]) -> None:
        await self.call("set_pid", node=node, pid=pid)

    async def cut(self, src: int, dst: int) -> None:
        await self.call("cut", src=src, dst=dst)

    async def cut_both(self, a: int, b: int) -> None:
        await self.call("cut_both", a=a, b=b)

    async def partition(self, groups) -> None:
        await self.call("partition", groups=[list(g) for g in groups])

    async def isolate(self, node: int) -> None:
        await self.call("isolate", node=node)

    async def delay(self, src: Optional[int], dst: Optional[int], seconds: float) -> None:
        await self.call("delay", src=src, dst=dst, seconds=seconds)

    async def heal(self) -> None:
        await self.call("heal")

    async def reset(self, node: Optional[int] = None) -> int:
        return await self.call("reset", node=node)

    async def stats(self) -> dict:
        return await self.call("stats")

    async def close(self) -> None:
        proc = self.proc
        if proc.returncode is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                await asyncio.wait_for(proc.wait(), 3.0)
            except (asyncio.TimeoutError, OSError):
                pass
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


if __name__ == "__main__":
    _child_main()
