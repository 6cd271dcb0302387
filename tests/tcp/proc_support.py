"""Drive node_runner processes (one Raft node per OS process) from an async test."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from typing import Any, Dict, List



ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Seconds a single command may take; generous, the machine is shared.
CALL_TIMEOUT = 15.0


class CommandFailed(Exception):
    def __init__(self, reply: Dict[str, Any]) -> None:
        self.reply = reply
        self.error = reply.get("error")
        super().__init__(f"{reply.get('error')}: {reply.get('message')}")


class NodeProc:
    """One node_runner process; `call(op, **args)` sends a command and returns its reply."""

    def __init__(self, node_id: int, proc: asyncio.subprocess.Process, port: int, log_path: str) -> None:
        self.id = node_id
        self.proc = proc
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.log_path = log_path
        self._ids = itertools.count(1)
        self._waiting: Dict[int, asyncio.Future] = {}
        self._reader = asyncio.ensure_future(self._read_replies())

    @classmethod
    async def start(cls, node_id: int, log_dir: str, loop_kind: str, *extra: str, port: int = 0) -> "NodeProc":
        log_path = os.path.join(log_dir, f"node{node_id}-{os.urandom(3).hex()}.log")
        args = [sys.executable, "-m", "openraft_fast.testing.node_runner", "--id", str(node_id),
                "--port", str(port), "--log-level", "INFO", *extra]
        if loop_kind == "asyncio":
            args.append("--no-uvloop")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(log_path, "wb") as err:
            proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.PIPE, stderr=err, cwd=ROOT, env=env)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), CALL_TIMEOUT)
            hello = json.loads(line)
        except Exception:
            proc.kill()
            await proc.wait()
            with open(log_path) as f:
                raise AssertionError(f"node {node_id} did not start: {f.read()[-2000:]}")
        return cls(node_id, proc, hello["port"], log_path)

    async def _read_replies(self) -> None:
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            reply = json.loads(line)
            fut = self._waiting.pop(reply.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(reply)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"node {self.id} exited"))
        self._waiting.clear()

    async def call(self, op: str, timeout: float = CALL_TIMEOUT, **args) -> Dict[str, Any]:
        """Run one command; raise CommandFailed if the node answered an error."""
        cid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[cid] = fut
        self.proc.stdin.write((json.dumps(dict(args, op=op, id=cid)) + "\n").encode())
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(fut, timeout)
        if not reply["ok"]:
            raise CommandFailed(reply)
        return reply

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill9(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), CALL_TIMEOUT)
        self._reader.cancel()

    async def stop(self) -> None:
        """Ask to shut down; kill -9 if it does not exit promptly."""
        if self.alive:
            try:
                await self.call("shutdown", timeout=3.0)
                await asyncio.wait_for(self.proc.wait(), 5.0)
            except Exception:
                pass
        await self.kill9()

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


class ProcCluster:
    """Node processes of one test; every one is killed on exit, whatever happened."""

    def __init__(self, log_dir: str, loop_kind: str, *extra: str) -> None:
        self.log_dir = log_dir
        self.loop_kind = loop_kind
        self.extra = extra
        self.nodes: Dict[int, NodeProc] = {}

    async def __aenter__(self) -> "ProcCluster":
        return self

    async def __aexit__(self, exc_type, *exc) -> None:
        # After a failure or a timeout, no grace: kill -9 at once. (A runner whose stdin
        # closes exits by itself too, so none outlives the test process.)
        stop = NodeProc.stop if exc_type is None else NodeProc.kill9
        await asyncio.gather(*(stop(n) for n in self.nodes.values()), return_exceptions=True)

    async def spawn(self, node_id: int, *extra: str, port: int = 0) -> NodeProc:
        n = self.nodes[node_id] = await NodeProc.start(node_id, self.log_dir, self.loop_kind, *self.extra, *extra,
                                                       port=port)
        return n

    async def start(self, ids: List[int], *extra: str) -> int:
        for i in ids:
            await self.spawn(i, *extra)
        await self.nodes[ids[0]].call("init", nodes={str(i): self.nodes[i].addr for i in ids})
        return await self.wait_leader(ids)

    async def status(self, i: int) -> Dict[str, Any]:
        return await self.nodes[i].call("status")

    async def wait_leader(self, ids: List[int], timeout: float = 10.0) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            sts = [await self.status(i) for i in ids]
            leaders = {s["leader"] for s in sts}
            last = sts
            if len(leaders) == 1 and None not in leaders:
                (lid,) = leaders
                if lid in ids and sts[ids.index(lid)]["state"] == "LEADER":
                    return lid
            await asyncio.sleep(0.05)
        raise AssertionError(f"no agreed leader among {ids} within {timeout}s: {last}")

    async def wait_applied(self, ids: List[int], index: int, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            sts = [await self.status(i) for i in ids]
            if all(s["applied"] >= index for s in sts):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"nodes {ids} did not apply {index} within {timeout}s: {sts}")
