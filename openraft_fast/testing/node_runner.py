"""One Raft node as an OS process, driven over stdin/stdout: for multi-process tests.

    python -m openraft_fast.testing.node_runner --id 1 --port 0 [--no-uvloop] [--wal DIR] [--tls DIR]

The node serves TCP on 127.0.0.1 (`--host`), prints one JSON line `{"port": N, "pid": P}` once it
listens, then reads JSON commands, one per line, each with an `id` echoed in its one-line reply
(`{"id": .., "ok": true, ...}` or `{"id": .., "ok": false, "error": "<type>", "message": ".."}`).
Commands run concurrently (a blocking add_learner does not hold up status):

    {"op": "init", "nodes": {"1": "127.0.0.1:7001", ...}}
    {"op": "write", "key": k, "value": v}                 -> {"index": i}
    {"op": "write_bulk", "count": n, "size": s, "prefix": p} -> {"index": last}   (n keys p0.., s-byte values)
    {"op": "read", "key": k}          linearizable, on any node (read index)   -> {"value": v, "index": i}
    {"op": "get", "key": k}           local, not linearizable                   -> {"value": v}
    {"op": "keys"}                    every key of the local state machine     -> {"keys": [...]}
    {"op": "status"}                  -> state, term, leader, last_log_index, committed, applied,
                                         snapshot, voters, learners
    {"op": "add_learner", "node": 4, "addr": "127.0.0.1:7004", "blocking": true}
    {"op": "change_membership", "members": [1, 2, 4]}
    {"op": "snapshot"}  {"op": "elect"}  {"op": "shutdown"}

Stores: `MemLogStore` + `MemStateMachine`, or with `--wal DIR` the durable `WalLogStore` (the
state machine is rebuilt by re-applying the log, so use it with `--snapshot-policy never`).
A process restarted with memory stores has lost its vote and log: it must rejoin under a new
node id as a learner (it then catches up by log or snapshot). Restarted with `--wal`, it
rejoins under its own id. TLS: `--tls DIR` reads `ca.pem`, `node.pem` (certificate + key) and
uses them for mutual TLS on both the server and the client side.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
from typing import Any, Dict, Optional

import msgpack

from openraft_fast import _aio
from openraft_fast.config import Config
from openraft_fast.network.tcp import TcpNetworkFactory, TcpServer, serve_tcp
from openraft_fast.raft import Raft
from openraft_fast.storage import MemLogStore, MemStateMachine, WalLogStore
from openraft_fast._core.types import Node


def tls_contexts(directory: str):
    """(server, client) SSLContexts for mutual TLS from ca.pem and node.pem in `directory`."""
    ca = os.path.join(directory, "ca.pem")
    cert = os.path.join(directory, "node.pem")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    server.load_cert_chain(cert)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    client.load_cert_chain(cert)
    return server, client


class NodeRunner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.raft: Optional[Raft] = None
        self.sm = MemStateMachine()
        self.server: Optional[TcpServer] = None
        self.done = asyncio.Event()
        self._out = sys.stdout

    def config(self) -> Config:
        a = self.args
        policy: Any = a.snapshot_policy if a.snapshot_policy == "never" else int(a.snapshot_policy)
        return Config(cluster_name=a.cluster_name, heartbeat_interval=a.heartbeat,
                      election_timeout_min=a.election_min, election_timeout_max=a.election_max,
                      snapshot_policy=policy, snapshot_chunk_size=a.chunk_size,
                      max_in_snapshot_log_to_keep=a.keep_logs, backoff=a.backoff)

    async def start(self) -> None:
        a = self.args
        server_ctx = client_ctx = None
        if a.tls:
            server_ctx, client_ctx = tls_contexts(a.tls)
        cfg = self.config()
        log_store = WalLogStore(a.wal) if a.wal else MemLogStore()
        self.raft = await Raft.start(a.id, cfg, TcpNetworkFactory(a.id, cfg, ssl=client_ctx), log_store, self.sm)
        server = self.server = await serve_tcp(self.raft, a.host, a.port, ssl=server_ctx)
        self.emit({"port": server.port, "pid": os.getpid()})

    def emit(self, obj: Dict[str, Any]) -> None:
        self._out.write(json.dumps(obj) + "\n")
        self._out.flush()

    async def serve_stdin(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks = set()
        while not self.done.is_set():
            line = await reader.readline()
            if not line:
                break                       # stdin closed: the driver is gone
            try:
                cmd = json.loads(line)
                if not isinstance(cmd, dict):
                    raise ValueError("a command is a JSON object")
            except ValueError as exc:
                self.emit({"id": None, "ok": False, "error": "BadCommand", "message": str(exc)})
                continue
            t = loop.create_task(self.handle(cmd))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        self.done.set()

    async def handle(self, cmd: Dict[str, Any]) -> None:
        reply: Dict[str, Any] = {"id": cmd.get("id")}
        try:
            op = getattr(self, "op_" + str(cmd.get("op")), None)
            if op is None:
                raise ValueError(f"unknown op {cmd.get('op')!r}")
            reply.update(await op(cmd) or {})
            reply["ok"] = True
        except Exception as exc:
            reply.update(ok=False, error=type(exc).__name__, message=str(exc))
        self.emit(reply)

    # ------------------------------------------------------------------ commands
    async def op_init(self, cmd):
        await self.raft.initialize({int(i): Node(addr) for i, addr in cmd["nodes"].items()})

    async def op_write(self, cmd):
        r = await self.raft.client_write(msgpack.packb([cmd["key"], cmd["value"]]))
        return {"index": r.log_id.index}

    async def op_write_bulk(self, cmd):
        value = b"v" * int(cmd["size"])
        prefix = cmd.get("prefix", "k")
        rs = await self.raft.client_write_many([msgpack.packb([f"{prefix}{i}", value])
                                                for i in range(int(cmd["count"]))])
        return {"index": rs[len(rs) - 1].log_id.index}

    async def op_read(self, cmd):
        at = await self.raft.ensure_linearizable()
        return {"value": self.sm.data.get(cmd["key"]), "index": at.index if at is not None else 0}

    async def op_get(self, cmd):
        return {"value": self.sm.data.get(cmd["key"])}

    async def op_keys(self, cmd):
        return {"keys": sorted(k for k in self.sm.data if isinstance(k, str))}

    async def op_status(self, cmd):
        m = self.raft.metrics
        mem = m.membership
        voters = sorted(mem.voter_ids) if mem is not None else []
        return {"state": m.state.name, "term": m.current_term, "leader": m.current_leader,
                "last_log_index": m.last_log_index,
                "committed": m.committed.index if m.committed else 0,
                "applied": m.last_applied.index if m.last_applied else 0,
                "snapshot": m.snapshot.index if m.snapshot else 0,
                "voters": voters,
                "learners": sorted(mem.learner_ids) if mem is not None else []}

    async def op_add_learner(self, cmd):
        r = await self.raft.add_learner(int(cmd["node"]), Node(cmd["addr"]), blocking=bool(cmd.get("blocking", True)))
        return {"index": r.log_id.index}

    async def op_change_membership(self, cmd):
        r = await self.raft.change_membership([int(i) for i in cmd["members"]])
        return {"index": r.log_id.index}

    async def op_snapshot(self, cmd):
        await self.raft.trigger.snapshot()

    async def op_elect(self, cmd):
        await self.raft.trigger.elect()

    async def op_shutdown(self, cmd):
        asyncio.get_running_loop().call_soon(self.done.set)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
        if self.raft is not None:
            await self.raft.shutdown()


async def main_async(args: argparse.Namespace) -> None:
    runner = NodeRunner(args)
    await runner.start()
    stdin_task = asyncio.ensure_future(runner.serve_stdin())
    try:
        await runner.done.wait()
    finally:
        stdin_task.cancel()
        await runner.stop()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m openraft_fast.testing.node_runner", description=__doc__.split("\n")[0])
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cluster-name", default="openraft_fast")
    p.add_argument("--no-uvloop", action="store_true", help="run on stock asyncio")
    p.add_argument("--wal", help="a WalLogStore directory (default: memory stores)")
    p.add_argument("--tls", help="directory with ca.pem and node.pem: mutual TLS")
    p.add_argument("--heartbeat", type=float, default=0.05)
    p.add_argument("--election-min", type=float, default=0.3)
    p.add_argument("--election-max", type=float, default=0.6)
    p.add_argument("--backoff", type=float, default=0.05)
    p.add_argument("--snapshot-policy", default="never", help="entries between snapshots, or 'never'")
    p.add_argument("--chunk-size", type=int, default=3 * 1024 * 1024, help="snapshot chunk size in bytes")
    p.add_argument("--keep-logs", type=int, default=1000, help="Config.max_in_snapshot_log_to_keep")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s node{args.id} %(levelname)s %(name)s: %(message)s")
    _aio.run(main_async(args), use_uvloop=not args.no_uvloop)


if __name__ == "__main__":
    main()
