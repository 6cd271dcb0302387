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
from openraft_fast.testing.serve_process import (CLI_TIMEOUT, ROOT, ServeProcess, cli, cli_sync, free_ports,  # noqa: E402,F401
                                                 node_args, start_serve_cluster)


def serve_tls(tmp_path):
    """trustme certificates for `serve`: (the --tls-* arguments of a node, their paths by name)."""
    import trustme
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = {n: str(tmp_path / f"{n}.pem") for n in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    leaf.cert_chain_pems[0].write_to_path(paths["cert"])
    leaf.private_key_pem.write_to_path(paths["key"])
    return ["--tls-cert", paths["cert"], "--tls-key", paths["key"], "--tls-ca", paths["ca"]], paths


class PutWriters:
    """`async with PutWriters(urls, n) as w:` n writers putting "w<n>/<seq>" = str(seq) in a loop
    until the block ends; `w.acked`: {key: (value, revision)} of the acknowledged puts,
    `w.unknown`: the keys whose outcome is unknown (never retried)."""

    def __init__(self, urls, writers: int = 4) -> None:
        self.urls = list(urls)
        self.writers = writers
        self.acked = {}
        self.unknown = set()
        self._stop = None
        self._tasks = []

    async def _writer(self, w: int) -> None:
        from openraft_fast.errors import RaftError
        from openraft_fast.kv import KvClient, KvOutcomeUnknown
        seq = 0
        async with KvClient(self.urls, timeout=10.0, retry_ambiguous_writes=False) as kv:
            while not self._stop.is_set():
                seq += 1
                key = f"w{w}/{seq}"
                try:
                    self.acked[key] = (str(seq), await kv.put(key, str(seq)))
                except (KvOutcomeUnknown, RaftError):
                    self.unknown.add(key)

    async def __aenter__(self) -> "PutWriters":
        import asyncio
        self._stop = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._writer(w)) for w in range(self.writers)]
        return self

    async def __aexit__(self, *exc) -> None:
        import asyncio
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
