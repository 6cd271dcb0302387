"""The raw-TCP transport (uvloop when installed): a cluster across processes.

    raft = await Raft.start(1, config, TcpNetworkFactory(1, config, ssl=client_ctx), log_store, sm)
    server = await serve_tcp(raft, "127.0.0.1", 7001, ssl=server_ctx)   # .port, await .close()

A target's address is its `Node.addr`, "host:port". Each target gets three connections
(lanes): appends, control (votes, heartbeats, timeout-now, read-index) and snapshots, so
heartbeats never wait behind bulk data. Modules: `frames` (one framed connection, coalesced
writes), `client` (per-target clients, pipelining, backoff, snapshot streaming), `server`
(handshake, lane rules, dispatch to the node, snapshot assembly).

The session on one connection (frames from `openraft_fast._core.codec`, layout in docs/wire.md):
- The client's first frame is `Handshake(version, cluster_name, src, dst, lane)` with
  correlation id 0; the server answers `HandshakeReply(True, "")`, or `HandshakeReply(False,
  reason)` and closes. The client may pipeline requests right behind its handshake.
- Requests carry correlation ids from 1 up, per connection; each response echoes its request's
  id, in any order. A handler that raised answers `ErrorReply(code, message)` (1: the node is
  stopped, 2: another failure); the caller gets NetworkError.
- Lanes: append (0) takes AppendRequest; control (1) takes VoteRequest, AppendRequest without
  entries (heartbeats), ReadIndexRequest and TimeoutNow (one-way: no response); snapshot (2)
  takes SnapshotChunk. Anything else closes the connection.
- A snapshot is a run of SnapshotChunks from offset 0, each sent after the previous one's
  answer: `SnapshotResponse(ok=True)` paces the non-last chunks; the last chunk is answered by
  the node's own SnapshotResponse to the whole InstallSnapshotRequest.
"""
from openraft_fast.network.tcp.client import TcpNetwork, TcpNetworkFactory, parse_addr
from openraft_fast.network.tcp.frames import LANE_APPEND, LANE_CONTROL, LANE_SNAPSHOT
from openraft_fast.network.tcp.server import TcpServer, serve_tcp

__all__ = ["LANE_APPEND", "LANE_CONTROL", "LANE_SNAPSHOT", "TcpNetwork", "TcpNetworkFactory", "TcpServer",
           "parse_addr", "serve_tcp"]
