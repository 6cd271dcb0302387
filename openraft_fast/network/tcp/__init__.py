"""The raw-TCP transport (uvloop when installed): a cluster across processes.

    raft = await Raft.start(1, config, TcpNetworkFactory(1, config, ssl=client_ctx), log_store, sm)
    server = await serve_tcp(raft, "127.0.0.1", 7001, ssl=server_ctx)   # .port, await .close()

A target's address is its `Node.addr`, "host:port". Each target gets three connections
(lanes): appends, control (votes, heartbeats, timeout-now, read-index) and snapshots, so
heartbeats never wait behind bulk data. Modules: `frames` (one framed connection, coalesced
writes), `client` (per-target clients, pipelining, backoff, snapshot streaming), `server`
(handshake, lane rules, dispatch to the node, snapshot assembly).
"""
from openraft_fast.network.tcp.client import TcpNetwork, TcpNetworkFactory, parse_addr
from openraft_fast.network.tcp.frames import LANE_APPEND, LANE_CONTROL, LANE_SNAPSHOT
from openraft_fast.network.tcp.server import TcpServer, serve_tcp

__all__ = ["LANE_APPEND", "LANE_CONTROL", "LANE_SNAPSHOT", "TcpNetwork", "TcpNetworkFactory", "TcpServer",
           "parse_addr", "serve_tcp"]
