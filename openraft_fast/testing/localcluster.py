"""A local cluster of real `openraft-fast serve` processes on 127.0.0.1 (chaos tests, the demo,
the failover benchmark).

Ports are picked free at run time; every node keeps its data directory and its log file
(`node-N.log`, appended across restarts) under `base_dir`. With a fault network (see
`faultproxy`), each node's raft port sits behind a proxy and the membership holds the proxy
addresses, so every raft connection goes through the faults; `serve` binds `--raft` while the
cluster is initialized with the advertised (proxy) address.

Processes are started with the interpreter running this code, importing this very
`openraft_fast` package (PYTHONPATH), whatever is installed.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import openraft_fast
from openraft_fast.errors import InvalidArgument, RaftError

_SERVE = "import sys; from openraft_fast.cli.main import main; sys.exit(main(sys.argv[1:]))"
_PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(openraft_fast.__file__)))


class ClusterError(RaftError):
    """The local cluster did not reach the state asked for in time (the message says which)."""


def _ephemeral_range() -> tuple:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, outside the kernel's ephemeral range: a port reserved here and bound
    later by a node process must not be handed meanwhile to some connection's local end (or to
    a listener on port 0), which happens often enough with ephemeral ports."""
    lo, hi = _ephemeral_range()
    candidates = range(10000, lo) if lo - 10000 >= 1000 else range(hi + 1, 65536)
    for _ in range(200):
        port = random.choice(candidates)
        s = socket.socket()
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise ClusterError("no free port found")


class NodeProcess:
    """One `serve` process. `advertised` is the raft address the membership holds."""

    def __init__(self, node_id: int, base_dir: str, host: str = "127.0.0.1") -> None:
        self.id = node_id
        self.host = host
        self.raft_port = free_port(host)
        self.http_port = free_port(host)
        self.data_dir = os.path.join(base_dir, f"node-{node_id}")
        self.log_path = os.path.join(base_dir, f"node-{node_id}.log")
        self.advertised = f"{host}:{self.raft_port}"
        self.proc: Optional[subprocess.Popen] = None
        self.paused = False
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def http(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, log_level: str = "info") -> None:
        if self.alive:
            raise InvalidArgument(f"node {self.id} is already running")
        env = dict(os.environ)
        env["PYTHONPATH"] = _PKG_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, "-c", _SERVE, "serve", "--id", str(self.id),
               "--raft", f"{self.host}:{self.raft_port}", "--http", self.http,
               "--data", self.data_dir, "--log-level", log_level]
        with open(self.log_path, "ab") as log:
            log.write(f"=== start {self.starts + 1} at {time.time():.3f}: {' '.join(cmd[3:])}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        self.starts += 1
        self.paused = False

    def signal(self, sig: int) -> bool:
        if not self.alive:
            return False
        assert self.proc is not None
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        if sig == signal.SIGSTOP:
            self.paused = True
        elif sig == signal.SIGCONT:
            self.paused = False
        return True

    def kill(self) -> None:
        """SIGKILL and reap (a paused process dies too)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.paused = False

    def terminate(self, timeout: float = 5.0) -> None:
        """SIGTERM (clean stop), SIGKILL after `timeout`."""
        if not self.alive:
            return
        assert self.proc is not None
        if self.paused:
            self.signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""


class LocalCluster:
    """`n` nodes (ids 1..n). `async with LocalCluster(3, dir) as c: await c.start()`; every
    process is killed on exit. `faults`: a FaultNetwork or FaultNetworkProcess to route raft
    traffic through."""

    def __init__(self, n: int, base_dir: str, faults: Any = None, log_level: str = "info",
                 ready_timeout: float = 30.0) -> None:
        if not isinstance(n, int) or n < 1:
            raise InvalidArgument(f"a cluster needs at least one node, got {n!r}")
        os.makedirs(base_dir, exist_ok=True)
        self.base_dir = base_dir
        self.faults = faults
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.nodes: Dict[int, NodeProcess] = {i: NodeProcess(i, base_dir) for i in range(1, n + 1)}
        self._client = None

    async def __aenter__(self) -> "LocalCluster":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def urls(self) -> List[str]:
        return [n.url for n in self.nodes.values()]

    def client(self, endpoints: Optional[List[str]] = None, **kw):
        from openraft_fast.kv import KvClient
        return KvClient(endpoints or self.urls, **kw)

    def _status_client(self):
        if self._client is None:
            self._client = self.client(timeout=1.0, request_timeout=0.8)
        return self._client

    async def start(self, init: bool = True) -> int:
        """Start every node (behind its proxy when there is a fault network) and initialize the
        cluster with all of them as voters; returns the leader's id."""
        for node in self.nodes.values():
            if self.faults is not None:
                node.advertised = await self.faults.add(node.id, f"{node.host}:{node.raft_port}")
            await self.start_node(node.id)
        for node in self.nodes.values():
            await self.wait_up(node.id)
        if not init:
            return -1
        first = self.nodes[min(self.nodes)]
        spec = {i: (n.advertised, n.http) for i, n in self.nodes.items()}
        async with self.client([first.url], timeout=10.0) as kv:
            await kv.init(spec)
        return await self.leader()

    async def start_node(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.start(self.log_level)
        if self.faults is not None and hasattr(self.faults, "set_pid"):
            # the fault network tells nodes' connections apart by pid (set before the process
            # has finished importing, long before it connects)
            await self.faults.set_pid(node_id, node.proc.pid)  # type: ignore[union-attr]

    async def wait_up(self, node_id: int, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Until the node answers its status (it has opened its data and listens)."""
        node = self.nodes[node_id]
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if not node.alive:
                raise ClusterError(f"node {node_id} exited ({node.proc.returncode if node.proc else None}):\n"
                                   f"{node.log_tail()}")
            st = await self.status(node_id)
            if st is not None:
                return st
            await asyncio.sleep(0.05)
        raise ClusterError(f"node {node_id} did not come up within {timeout or self.ready_timeout}s:\n"
                           f"{node.log_tail()}")

    async def status(self, node_id: int) -> Optional[Dict[str, Any]]:
        """The node's status, or None when it does not answer (down, paused, slow)."""
        node = self.nodes[node_id]
        if not node.alive or node.paused:
            return None
        try:
            return await self._status_client().status(node.url)
        except RaftError:
            return None

    async def statuses(self) -> Dict[int, Optional[Dict[str, Any]]]:
        ids = list(self.nodes)
        found = await asyncio.gather(*(self.status(i) for i in ids))
        return dict(zip(ids, found))

    async def leader(self, timeout: float = 30.0, exclude=()) -> int:
        """The id of a leader that the majority of answering nodes agree on (the highest term)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sts = await self.statuses()
            leaders = [(st["term"], i) for i, st in sts.items()
                       if st is not None and st["state"] == "leader" and i not in exclude]
            if leaders:
                return max(leaders)[1]
            await asyncio.sleep(0.05)
        raise ClusterError(f"no leader within {timeout}s")

    def kill(self, node_id: int) -> None:
        self.nodes[node_id].kill()

    async def restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.kill()
        await self.start_node(node_id)
        await self.wait_up(node_id)

    def pause(self, node_id: int) -> bool:
        return self.nodes[node_id].signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> bool:
        return self.nodes[node_id].signal(signal.SIGCONT)

    async def converge(self, timeout: float = 30.0) -> Dict[int, Dict[str, Any]]:
        """Wait until every node runs, has one leader, and has applied the leader's commit index;
        returns the statuses. ClusterError (with the last statuses) on timeout."""
        deadline = time.monotonic() + timeout
        sts: Dict[int, Optional[Dict[str, Any]]] = {}
        while time.monotonic() < deadline:
            sts = await self.statuses()
            if all(st is not None for st in sts.values()):
                leaders = {st["leader"] for st in sts.values()}  # type: ignore[index]
                applied = {st["applied"] for st in sts.values()}  # type: ignore[index]
                committed = max(st["committed"] or 0 for st in sts.values())  # type: ignore[index]
                if len(leaders) == 1 and None not in leaders and applied == {committed}:
                    return sts  # type: ignore[return-value]
            await asyncio.sleep(0.1)
        brief = {i: (None if st is None else {k: st[k] for k in ("state", "term", "leader", "committed", "applied")})
                 for i, st in sts.items()}
        raise ClusterError(f"nodes did not converge within {timeout}s: {brief}")

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        for node in self.nodes.values():
            node.kill()
