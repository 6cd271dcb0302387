"""`openraft-fast serve` nodes and CLI calls as real OS processes on 127.0.0.1, for tests,
benchmarks and demos: `free_ports`, `ServeProcess` (start, wait_http, terminate with SIGTERM,
kill -9), `cli` / `cli_sync` (run a command: exit code, stdout, stderr). Every wait is bounded
and every process is killed if it does not stop."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from typing import Dict, Iterable, List, Optional, Tuple

from openraft_fast.errors import Fatal, Timeout

# Where the processes run: the checkout holding this package, so they import the same code.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A CLI process imports aiohttp and the package: seconds on a loaded machine.
CLI_TIMEOUT = 30.0


def free_ports(n: int, host: str = "127.0.0.1") -> List[int]:
    """n distinct ports free right now on `host` (chosen at run time, never hard-coded): each
    stays bound until all are chosen."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def cli(*args: str, timeout: float = CLI_TIMEOUT, stdin: Optional[bytes] = None) -> Tuple[Optional[int], str, str]:
    """Run `openraft-fast ARGS` from this worktree: (exit code, stdout, stderr); `stdin` is fed to it."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "openraft_fast.cli", *args, cwd=ROOT,
                                                stdin=asyncio.subprocess.PIPE if stdin is not None else None,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


def cli_sync(*args: str, timeout: float = CLI_TIMEOUT) -> Tuple[int, str, str]:
    """`cli` without an event loop (for commands that reach no server)."""
    p = subprocess.run([sys.executable, "-m", "openraft_fast.cli", *args], cwd=ROOT, capture_output=True,
                       timeout=timeout, text=True)
    return p.returncode, p.stdout, p.stderr


class ServeProcess:
    """One `openraft-fast serve` OS process on 127.0.0.1."""

    def __init__(self, node_id: int, raft_port: int, http_port: int, data: str, extra: Iterable[str] = ()) -> None:
        self.node_id = node_id
        self.raft = f"127.0.0.1:{raft_port}"
        self.http = f"127.0.0.1:{http_port}"
        self.url = f"http://{self.http}"
        self.client: Optional[str] = None       # its binary client address, if serving one
        self.data = data
        self.extra = list(extra)
        self.proc: Optional[asyncio.subprocess.Process] = None
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
        """Until the HTTP server accepts connections: Timeout after `timeout`, Fatal if the
        process exited."""
        assert self.proc is not None, "start() first"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        host, port = self.http.rsplit(":", 1)
        while True:
            if self.proc.returncode is not None:
                raise Fatal(f"serve {self.node_id} exited {self.proc.returncode}: {self.log()}")
            try:
                _, w = await asyncio.open_connection(host, int(port))
                w.close()
                return
            except OSError:
                if loop.time() > deadline:
                    raise Timeout(f"serve {self.node_id} not listening after {timeout}s: {self.log()}")
                await asyncio.sleep(0.1)

    async def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for the exit code; after `timeout` kill -9 and answer -9999."""
        assert self.proc is not None, "start() first"
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


async def start_serve_cluster(data_root: str, ids: Iterable[int] = (1, 2, 3), extra: Iterable[str] = (),
                              ports: Optional[Dict[int, Tuple[int, int]]] = None,
                              client: bool = False) -> Dict[int, ServeProcess]:
    """`serve` processes with ids `ids`, each on free ports (or `ports[id]` = (raft, http)),
    with `client`, also a binary client port each (`.client`), in `data_root/n<id>`, started
    and each serving HTTP (not initialized: `node_args` gives `cluster init` its nodes).
    Started processes are killed if one fails to come up."""
    ids = list(ids)
    if ports is None:
        ports = {i: (r, h) for i, r, h in zip(ids, free_ports(len(ids)), free_ports(len(ids)))}
    clients = {i: f"127.0.0.1:{c}" for i, c in zip(ids, free_ports(len(ids)))} if client else {}
    procs = {}
    for i in ids:
        p = procs[i] = ServeProcess(i, ports[i][0], ports[i][1], os.path.join(data_root, f"n{i}"),
                                    list(extra) + (["--client", clients[i]] if client else []))
        p.client = clients.get(i)
    try:
        for p in procs.values():
            await p.start()
        for p in procs.values():
            await p.wait_http()
    except BaseException:
        for p in procs.values():
            await p.kill()
        raise
    return procs


def node_args(procs: Dict[int, ServeProcess]) -> List[str]:
    """`cluster init`'s --node arguments for these processes (with their client addresses)."""
    return [a for i, p in procs.items()
            for a in ("--node", f"{i}={p.raft},{p.http}" + (f",{p.client}" if p.client else ""))]
