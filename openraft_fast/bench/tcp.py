"""B3: three OS processes over TCP, with the TCP floor (bench.tcp_floor) and optionally PySyncObj
(bench.peers.pysyncobj) run by the same client loops in the same run."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Callable, List, NamedTuple, Optional

from openraft_fast import Config, Node, Raft, ServerState
from openraft_fast.bench.load import run_clients
from openraft_fast.bench.results import BenchResult, summarize
from openraft_fast.storage import MemLogStore, NoopStateMachine
from openraft_fast.storage.wal import WalLogStore


TCP_SYSTEMS = ("ours", "floor")          # always run; a --peer adds its configurations


def tcp_bench_config() -> Config:
    """Our nodes' config over TCP: election timeouts long enough that a loop stalled by the
    other processes on a shared machine does not start an election mid-run."""
    return Config(heartbeat_interval=0.1, election_timeout_min=1.0, election_timeout_max=2.0)


class TcpCluster(NamedTuple):
    writer: object                  # node 1, with client_write / client_write_many
    follower_pids: List[int]


@contextlib.asynccontextmanager
async def tcp_cluster(system: str, nodes: int, config: Optional[Config] = None,
                      use_uvloop: Optional[bool] = None, wal: Optional[str] = None):
    """`nodes` processes on 127.0.0.1: this one is node 1 and the leader, the followers are
    child processes (killed on exit). Yields a TcpCluster: node 1's writer for `run_load`.
    `wal`: our nodes log to WalLogStores under this directory (fsync before acknowledging)."""
    from openraft_fast.bench.procs import Children
    from openraft_fast.testing.serve_process import free_ports
    if system == "ours":
        from openraft_fast.network.tcp import TcpNetworkFactory, serve_tcp
        config = config or tcp_bench_config()
        argvs = [["openraft_fast.bench.node", "--id", str(i), "--port", "0"] + config_args(config) +
                 ([] if wal is None else ["--wal", os.path.join(wal, f"node-{i}")]) for i in range(2, nodes + 1)]
        async with Children(argvs, use_uvloop=use_uvloop) as kids:
            log = MemLogStore() if wal is None else WalLogStore(os.path.join(wal, "node-1"))
            raft = await Raft.start(1, config, TcpNetworkFactory(1, config, ssl=None), log, NoopStateMachine())
            server = None
            try:
                server = await serve_tcp(raft, "127.0.0.1", 0)
                members = {1: Node(f"127.0.0.1:{server.port}")}
                members.update({i: Node(f"127.0.0.1:{p}") for i, p in enumerate(kids.ports, start=2)})
                await raft.initialize(members)
                await raft.wait(10.0).state(ServerState.LEADER)
                yield TcpCluster(raft, kids.pids)
            finally:
                await raft.shutdown()
                if server is not None:
                    await server.close()
                if isinstance(log, WalLogStore):
                    await log.close()
    elif system == "floor":
        from openraft_fast.bench.tcp_floor import FloorLeader
        argvs = [["openraft_fast.bench.tcp_floor", "--port", "0"] for _ in range(2, nodes + 1)]
        async with Children(argvs, use_uvloop=use_uvloop) as kids:
            leader = FloorLeader(nodes)
            try:
                await leader.connect([("127.0.0.1", p) for p in kids.ports])
                yield TcpCluster(leader, kids.pids)
            finally:
                await leader.close()
    else:
        from openraft_fast.bench.peers.pysyncobj import CONFIGS, PySyncObjLeader, follower_argv
        nobatch = CONFIGS[system]
        addrs = [f"127.0.0.1:{p}" for p in free_ports(nodes)]
        argvs = [follower_argv(a, [b for b in addrs if b != a], nobatch) for a in addrs[1:]]
        async with Children(argvs, use_uvloop=use_uvloop) as kids:
            peer = PySyncObjLeader(addrs[0], addrs[1:], nobatch)
            try:
                await peer.wait_leader()
                yield TcpCluster(peer, kids.pids)
            finally:
                await peer.close()


def config_args(config: Config) -> List[str]:
    """The command-line flags of `bench.node` that give a follower the leader's timing."""
    return ["--heartbeat", repr(config.heartbeat_interval), "--election-min", repr(config.election_timeout_min),
            "--election-max", repr(config.election_timeout_max)]


async def bench_tcp(nodes: int, client_counts: List[int], batch: int, payload_sizes: List[int], seconds: float,
                    peer: Optional[str] = None, progress: Optional[Callable[[str], None]] = None,
                    config: Optional[Config] = None, use_uvloop: Optional[bool] = None,
                    systems: Optional[List[str]] = None, store: str = "mem",
                    data: Optional[str] = None) -> List[BenchResult]:
    """B3: rows per (system, payload, clients). Ours and the floor run on clusters up at the same
    time, measured alternately row by row, so a machine whose speed drifts (shared cores)
    shifts both alike; each PySyncObj configuration then runs on its own cluster (its tick
    thread would otherwise share the bench process with our leader). `store="wal"`: our nodes
    log to WalLogStores in a temporary directory (under `data`), fsync before acknowledging."""
    if systems is None:
        systems = list(TCP_SYSTEMS)
        if peer == "pysyncobj":
            from openraft_fast.bench.peers.pysyncobj import CONFIGS
            systems += list(CONFIGS)
    groups = [[s for s in systems if s in TCP_SYSTEMS]] + [[s] for s in systems if s not in TCP_SYSTEMS]
    runs: dict = {}                       # (system, payload) -> run_clients' runs
    for group in filter(None, groups):
        async with contextlib.AsyncExitStack() as stack:
            wal = stack.enter_context(tempfile.TemporaryDirectory(dir=data)) if store == "wal" else None
            clusters = [(s, await stack.enter_async_context(tcp_cluster(s, nodes, config, use_uvloop, wal)))
                        for s in group]
            for size in payload_sizes:
                for c in client_counts:
                    for system, cluster in clusters:
                        label = f"{system:<17s} payload={size:<5d} "
                        runs.setdefault((system, size), []).extend(
                            await run_clients(cluster.writer, [c], _system_batch(system, batch), size, seconds,
                                              progress, label, cluster.follower_pids))
    results = []
    for system in systems:
        for size in payload_sizes:
            results.extend(summarize("tcp", system, nodes, _system_batch(system, batch), size, runs[(system, size)]))
    return results


def _system_batch(system: str, batch: int) -> int:
    # PySyncObj has no batch call: its rows are single writes whatever --batch says.
    return batch if system in TCP_SYSTEMS else 1
