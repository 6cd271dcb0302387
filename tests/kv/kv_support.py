"""An in-process KV cluster for the tests: Raft nodes on a LocalRouter (memory log), each with a
KvStateMachine and a real KvServer on 127.0.0.1 (port 0)."""
from __future__ import annotations

from typing import Dict, Iterable

from cluster_support import WAIT, Cluster
from openraft_fast import Node
from openraft_fast.kv import KvStateMachine
from openraft_fast.kv.server import KvServer


class KvCluster(Cluster):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.servers: Dict[int, KvServer] = {}

    async def start_kv(self, ids: Iterable[int], init: bool = True, **server_kw) -> int:
        ids = list(ids)
        for i in ids:
            await self.add_kv_node(i, **server_kw)
        if not init:
            return -1
        await self.rafts[ids[0]].initialize({i: self.member(i) for i in ids})
        return await self.wait_leader(ids)

    async def add_kv_node(self, i: int, **server_kw) -> KvServer:
        raft = await self.start_node(i, sm=KvStateMachine())
        server = await KvServer(raft, self.sm(i), "127.0.0.1", 0, **server_kw).start()
        self.servers[i] = server
        return server

    def member(self, i: int) -> Node:
        return Node(f"local:{i}", {"http": f"127.0.0.1:{self.servers[i].port}"})

    def url(self, i: int) -> str:
        return self.servers[i].url

    def urls(self, ids=None):
        return [self.url(i) for i in (ids or sorted(self.servers))]

    async def stop(self, i: int) -> None:
        await super().stop(i)
        server = self.servers.get(i)
        if server is not None:
            await server.close()

    async def shutdown(self) -> None:
        for s in self.servers.values():
            await s.close()
        await super().shutdown()


__all__ = ["KvCluster", "WAIT"]


# ---------------------------------------------------------------------------------- processes
import asyncio  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A CLI process imports aiohttp and the package: seconds on a loaded machine.
CLI_TIMEOUT = 30.0


def free_ports(n: int):
    """n ports free right now on 127.0.0.1 (chosen at run time, never hard-coded)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def cli(*args: str, timeout: float = CLI_TIMEOUT):
    """Run `openraft-fast ARGS` from this worktree: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "openraft_fast.cli", *args, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


def cli_sync(*args: str, timeout: float = CLI_TIMEOUT):
    """`cli` without an event loop (for commands that reach no server)."""
    import subprocess
    p = subprocess.run([sys.executable, "-m", "openraft_fast.cli", *args], cwd=ROOT, capture_output=True,
                       timeout=timeout, text=True)
    return p.returncode, p.stdout, p.stderr


class ServeProcess:
    """One `openraft-fast serve` OS process on 127.0.0.1."""

    def __init__(self, node_id: int, raft_port: int, http_port: int, data: str, extra=()) -> None:
        self.node_id = node_id
        self.raft = f"127.0.0.1:{raft_port}"
        self.http = f"127.0.0.1:{http_port}"
        self.url = f"http://{self.http}"
        self.data = data
        self.extra = list(extra)
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data), f"serve-{node_id}.log")

    async def start(self) -> "ServeProcess":
        log = open(self.log_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "openraft_fast.cli", "serve", "--id", str(self.node_id), "--raft", self.raft,
                "--http", self.http, "--data", self.data, *self.extra, cwd=ROOT, stdout=log, stderr=log)
        finally:
            log.close()
        return self

    def log(self) -> str:
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    async def wait_http(self, timeout: float = CLI_TIMEOUT) -> None:
        """Until the HTTP server accepts connections (or the process died)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        host, port = self.http.rsplit(":", 1)
        while True:
            if self.proc.returncode is not None:
                raise AssertionError(f"serve {self.node_id} exited {self.proc.returncode}: {self.log()}")
            try:
                _, w = await asyncio.open_connection(host, int(port))
                w.close()
                return
            except OSError:
                if loop.time() > deadline:
                    raise AssertionError(f"serve {self.node_id} not listening after {timeout}s: {self.log()}")
                await asyncio.sleep(0.1)

    async def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for the exit code (killed after `timeout`: the test then fails on it)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return -9999

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
