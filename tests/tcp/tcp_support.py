"""A cluster of Raft nodes in one process talking over real TCP sockets on 127.0.0.1."""
from __future__ import annotations

import asyncio
from typing import Dict, Iterable, List, Optional

import msgpack

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast.network.tcp import TcpNetworkFactory, TcpServer, serve_tcp
from openraft_fast.storage import MemLogStore, MemStateMachine

TCP_LOG = "openraft_fast.network.tcp"
FAST = Config(heartbeat_interval=0.02, election_timeout_min=0.15, election_timeout_max=0.3, backoff=0.02)
WAIT = 5.0


def kv(key, value) -> bytes:
    return msgpack.packb([key, value])


class TcpCluster:
    def __init__(self, config: Config = FAST, server_ssl=None, client_ssl=None) -> None:
        self.config = config
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.rafts: Dict[int, Raft] = {}
        self.servers: Dict[int, TcpServer] = {}
        self.factories: Dict[int, TcpNetworkFactory] = {}

    async def __aenter__(self) -> "TcpCluster":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()

    def node(self, i: int) -> Node:
        return Node(f"127.0.0.1:{self.servers[i].port}")

    async def start_node(self, i: int, config: Optional[Config] = None, sm=None) -> Raft:
        cfg = config or self.config
        f = self.factories[i] = TcpNetworkFactory(i, cfg, ssl=self.client_ssl)
        raft = self.rafts[i] = await Raft.start(i, cfg, f, MemLogStore(), sm or MemStateMachine())
        self.servers[i] = await serve_tcp(raft, "127.0.0.1", 0, ssl=self.server_ssl)
        return raft

    async def start(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        for i in ids:
            await self.start_node(i)
        await self.rafts[ids[0]].initialize({i: self.node(i) for i in ids})
        return await self.wait_leader(ids)

    async def wait_leader(self, ids: Iterable[int], timeout: float = WAIT) -> int:
        ids = list(ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            leaders = {self.rafts[i].current_leader() for i in ids}
            if len(leaders) == 1:
                (lid,) = leaders
                if lid is not None and self.rafts[lid].metrics.state == ServerState.LEADER:
                    return lid
            await asyncio.sleep(0.01)
        raise AssertionError(f"no agreed leader among {ids} within {timeout}s")

    async def write(self, leader: int, key, value):
        return await self.rafts[leader].client_write(kv(key, value))

    async def stop(self, i: int) -> None:
        await self.servers[i].close()
        await self.rafts[i].shutdown()
        self.factories[i].close()

    async def shutdown(self) -> None:
        for i in list(self.rafts):
            try:
                await self.stop(i)
            except Exception:
                pass
        self.rafts.clear()


def tcp_log(caplog) -> List[str]:
    """The messages the transport logged during the test."""
    return [r.getMessage() for r in caplog.records if r.name == TCP_LOG]
