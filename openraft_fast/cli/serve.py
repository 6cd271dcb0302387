"""`openraft-fast serve`: run one node of the replicated KV service.

The node keeps everything in `--data`: the WAL (`log/`), the latest state-machine snapshot
(`snapshot/`, as `open_storage` lays them out) and `node.json` (the node id the directory belongs to: a directory is never
reused under another id). It speaks Raft over TCP on `--raft`, the HTTP API on `--http` (and
with `--client` the binary client protocol); with `--tls-cert/--tls-key` all are TLS, and with
`--tls-ca` all require client certificates signed by that CA. SIGTERM or SIGINT stops it cleanly (exit 0): a leader first
hands leadership to its most up-to-date healthy voter (bounded by election_timeout_max), then
the node shuts down, the HTTP server and the Raft listener close, and the log is flushed and
released. A node that stops by itself (a storage or state-machine call failed: fatal) does not
leave the host serving HTTP as if alive: it closes the same way, says why on stderr and exits
EXIT_FATAL (3). A node that cannot start exits 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from typing import Optional, Tuple

from openraft_fast._aio import freeze_startup_heap
from openraft_fast.cli.args import bounded, host_port, one_line_errors
from openraft_fast.config import Config

_log = logging.getLogger("openraft_fast.serve")

# The exit code when the Raft node stopped by itself (fatal), distinct from a failed start (1).
EXIT_FATAL = 3


class ServeError(Exception):
    """A node could not start: a one-line reason for the operator."""


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run one node of the replicated KV service",
                       description="Run one node: WAL and KV state in --data, Raft over TCP, the HTTP API.")
    one_line_errors(p)
    p.add_argument("--id", type=bounded(int, 0, what="a node id"), required=True, help="this node's id (an integer >= 0)")
    p.add_argument("--raft", type=host_port, required=True, metavar="HOST:PORT", help="Raft (TCP) listen address")
    p.add_argument("--http", type=host_port, required=True, metavar="HOST:PORT", help="HTTP API listen address")
    p.add_argument("--client", type=host_port, metavar="HOST:PORT",
                   help="also serve the binary client protocol here (KvClient('orf://HOST:PORT'); docs/kv.md)")
    p.add_argument("--data", required=True, metavar="DIR", help="data directory (created if missing)")
    p.add_argument("--tls-cert", metavar="PEM", help="this node's certificate (Raft, HTTP and the client port)")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument("--tls-ca", metavar="PEM", help="CA that signs peers and clients: mutual TLS")
    p.add_argument("--cluster-name", default="openraft_fast", help="nodes of other clusters are refused")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="what goes to stderr (default info)")
    d = Config()
    p.add_argument("--heartbeat", type=bounded(float, 0, inclusive=False, what="seconds"),
                   default=d.heartbeat_interval, metavar="SECONDS", help="leader heartbeat interval")
    p.add_argument("--election-timeout", type=_timeout_range, metavar="MIN,MAX",
                   default=(d.election_timeout_min, d.election_timeout_max), help="election timeout range (s)")
    p.add_argument("--snapshot-policy", type=_snapshot_policy, default=d.snapshot_policy, metavar="N|never",
                   help="snapshot after N applied entries")
    p.add_argument("--pre-vote", action=argparse.BooleanOptionalAction, default=d.enable_pre_vote,
                   help="stand for election only after a pre-vote round a quorum grants, so a restarted, "
                        "isolated or removed node never raises the cluster's term (default: on)")
    p.add_argument("--health-max-lag", type=bounded(int, 0, what="an entry count"), default=10000, metavar="N",
                   help="GET /v1/health answers 503 \"lagging\" when this node has more than N committed entries "
                        "not yet applied")
    p.add_argument("--max-value-bytes", type=bounded(int, 1, what="a byte count"), default=1 << 20, metavar="N",
                   help="largest key or value in UTF-8 bytes (default 1 MiB); larger ones get 413 too_large")
    p.add_argument("--watch-history", type=bounded(int, 0, what="a revision count"), default=100000, metavar="N",
                   help="keep the changes of the last N revisions for watchers (default 100000); a watcher that "
                        "asks for an older revision gets 410 compacted")
    p.add_argument("--stall-warn", type=bounded(float, 0, what="milliseconds"), default=100.0, metavar="MS",
                   help="log a WARNING, with where it was, whenever the event loop is blocked longer than "
                        "this: heartbeats are late then and followers may stand for election (0: off)")
    p.add_argument("--stall-stacks", action="store_true",
                   help="with --stall-warn, also say where the event loop was (a sampling thread: it costs, "
                        "use it to find a stall)")


def _timeout_range(text: str) -> Tuple[float, float]:
    parse = bounded(float, 0, inclusive=False, what="seconds")
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX seconds, got {text!r}")
    return parse(parts[0]), parse(parts[1])


def _snapshot_policy(text: str):
    return "never" if text == "never" else bounded(int, 1, what="an entry count or 'never'")(text)


def _node_file(data: str, node_id: int) -> None:
    """Tie the data directory to one node id."""
    path = os.path.join(data, "node.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            owner = json.load(f).get("id")
    except FileNotFoundError:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"id": node_id}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return
    except (OSError, ValueError, AttributeError) as exc:
        raise ServeError(f"cannot read {path}: {exc}") from None
    if owner != node_id:
        raise ServeError(f"data directory {data!r} belongs to node {owner}, not node {node_id}")


def _tls(args) -> Tuple[Optional[ssl.SSLContext], Optional[ssl.SSLContext]]:
    from openraft_fast.kv.tls import client_context, server_context
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_ca is not None:
            raise ServeError("--tls-ca needs --tls-cert and --tls-key")
        return None, None
    return server_context(args.tls_cert, args.tls_key, args.tls_ca), \
        client_context(args.tls_cert, args.tls_key, args.tls_ca)


async def serve(args) -> int:
    from openraft_fast import Raft
    from openraft_fast.errors import RaftError
    from openraft_fast.kv.server import KvServer
    from openraft_fast.kv.state_machine import open_kv_storage
    from openraft_fast.network.tcp import TcpNetworkFactory, serve_tcp
    from openraft_fast.stall_watch import StallWatch

    config = Config(cluster_name=args.cluster_name, heartbeat_interval=args.heartbeat,
                    election_timeout_min=args.election_timeout[0], election_timeout_max=args.election_timeout[1],
                    snapshot_policy=args.snapshot_policy, enable_pre_vote=args.pre_vote)
    # (the config is checked before the data directory is touched)
    server_ssl, client_ssl = _tls(args)
    try:
        os.makedirs(args.data, exist_ok=True)
        _node_file(args.data, args.id)
    except OSError as exc:
        raise ServeError(f"cannot use data directory {args.data!r}: {exc}") from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log_store = raft = raft_server = http = client_server = factory = stall_watch = None
    code = 0
    try:
        log_store, sm = open_kv_storage(args.data, watch_history=args.watch_history)
        factory = TcpNetworkFactory(args.id, config, ssl=client_ssl)
        raft = await Raft.start(args.id, config, factory, log_store, sm)
        try:
            raft_server = await serve_tcp(raft, args.raft[0], args.raft[1], ssl=server_ssl)
            http = await KvServer(raft, sm, args.http[0], args.http[1], ssl=server_ssl,
                                  health_max_lag=args.health_max_lag, max_value_bytes=args.max_value_bytes).start()
            if args.client is not None:
                from openraft_fast.kv.binary import KvBinaryServer
                client_server = await KvBinaryServer(http, args.client[0], args.client[1], ssl=server_ssl).start()
        except OSError as exc:
            raise ServeError(f"cannot listen: {exc}") from None
        freeze_startup_heap()
        if args.stall_warn > 0:
            stall_watch = StallWatch(args.stall_warn / 1000, stacks=args.stall_stacks).start()
        m = raft.metrics
        _log.info("node %s up: raft %s:%s, http %s%s, data %s, last log %s, applied %s, %d keys",
                  args.id, args.raft[0], raft_server.port, http.url,
                  "" if client_server is None else f", client {client_server.url}", args.data, m.last_log_index,
                  m.last_applied, len(sm))
        # Run until a signal, or until the node stops by itself.
        signalled = asyncio.ensure_future(stop.wait())
        node_stopped = asyncio.ensure_future(_stop_cause(raft))
        try:
            await asyncio.wait((signalled, node_stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            signalled.cancel()
            node_stopped.cancel()
        if node_stopped.done() and not node_stopped.cancelled() and node_stopped.result() is not None:
            cause = node_stopped.result()
            print(f"openraft-fast serve: node {args.id} stopped fatally, exiting {EXIT_FATAL}: "
                  f"{' '.join(str(cause).split())}", file=sys.stderr, flush=True)
            code = EXIT_FATAL
        else:
            _log.info("node %s: stopping (signal)", args.id)
    except RaftError as exc:
        raise ServeError(str(exc)) from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if raft is not None:
            # First, while the Raft listener still serves: a leader hands over (the new leader's
            # vote request must reach it), so writers wait a round trip, not an election.
            await raft.shutdown(transfer=True)
        if client_server is not None:
            await client_server.close()
        if http is not None:
            await http.close()
        if raft_server is not None:
            await raft_server.close()
        if factory is not None:
            factory.close()
        if log_store is not None:
            await log_store.close()
        if stall_watch is not None:
            stall_watch.close()
    _log.info("node %s: stopped", args.id)
    return code


async def _stop_cause(raft):
    """Once the node has stopped: why (None: shut down)."""
    from openraft_fast.events import NodeStopped
    async for event in raft.events():
        if isinstance(event, NodeStopped):
            return event.cause
    return None


def main(args) -> int:
    from openraft_fast._aio import run
    from openraft_fast.errors import RaftError
    from openraft_fast.kv.endpoints import missing_service_dependency
    missing = missing_service_dependency()
    if missing:
        print(f"openraft-fast serve: error: {missing}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(serve(args))
    except (ServeError, RaftError, ValueError) as exc:
        print(f"openraft-fast serve: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
