"""`openraft-fast cluster ...` and `openraft-fast kv ...`: operate a running KV service over its
HTTP API (through KvClient: redirects to the leader, retries within --timeout).

Answers print as one line of JSON on stdout (`cluster status` prints a table). Failures print one
line on stderr and exit non-zero: 1 for a refused or failed call, 2 for bad arguments, 3 when
the outcome of a write is unknown.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, Dict, List

from openraft_fast.cli.args import OneLineParser, bounded, host_port, id_list, one_line_errors

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_OUTCOME_UNKNOWN = 3
ENDPOINTS_ENV = "OPENRAFT_FAST_ENDPOINTS"
LEARNER_TIMEOUT = 30.0      # as the service's default (kv.server.LEARNER_TIMEOUT)
# add-learner's --timeout bounds the catch-up on the server; the call itself gets this much more,
# so the server's answer (caught up, or not in time) arrives before the client gives up.
LEARNER_CALL_MARGIN = 10.0


def _endpoints(text: str) -> List[str]:
    from openraft_fast.errors import InvalidArgument
    from openraft_fast.kv.endpoints import normalize_endpoint
    urls = [u for u in (x.strip() for x in text.split(",")) if u]
    if not urls:
        raise argparse.ArgumentTypeError("expected comma-separated URLs (http://HOST:PORT)")
    try:
        return [normalize_endpoint(u) for u in urls]
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _node_spec(text: str):
    """ID=RAFT_HOST:PORT,HTTP_HOST:PORT[,CLIENT_HOST:PORT]"""
    ident, sep, rest = text.partition("=")
    addrs = rest.split(",")
    if not sep or not ident.strip().isdigit() or len(addrs) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected ID=RAFT_HOST:PORT,HTTP_HOST:PORT[,CLIENT_HOST:PORT], got {text!r}")
    return (int(ident),) + tuple(f"{h}:{p}" for h, p in (host_port(a.strip()) for a in addrs))


_non_negative = bounded(int, 0, what="an integer")
_positive = bounded(int, 1, what="an integer")
_seconds = bounded(float, 0, inclusive=False, what="seconds")


def _common(p: argparse.ArgumentParser, timeout: float = 10.0,
            timeout_help: str = "deadline of the call, retries included (s)") -> None:
    env = os.environ.get(ENDPOINTS_ENV)
    p.add_argument("--endpoints", type=_endpoints, default=_endpoints(env) if env else None, metavar="URL[,URL...]",
                   help=f"service HTTP endpoints (default ${ENDPOINTS_ENV})")
    p.add_argument("--timeout", type=_seconds, default=timeout, help=timeout_help)
    p.add_argument("--tls-ca", metavar="PEM", help="CA to verify https endpoints")
    p.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
    p.add_argument("--tls-key", metavar="PEM", help="client certificate's key")


def add_parsers(sub) -> None:
    c = one_line_errors(sub.add_parser("cluster", help="set up and inspect a KV service cluster"))
    csub = c.add_subparsers(dest="cluster_command", parser_class=OneLineParser, required=True, metavar="COMMAND")
    p = csub.add_parser("init", help="initialize the cluster with its first voters")
    _common(p)
    p.add_argument("--endpoint", type=_endpoints, help="the node to initialize at (same as --endpoints URL)")
    p.add_argument("--node", type=_node_spec, action="append", required=True, metavar="ID=RAFT,HTTP[,CLIENT]",
                   help="a voter: id, its Raft address, HTTP address and, if it serves one (serve --client), its "
                        "binary client address, where clients are redirected to the leader (repeat per node)")
    p = csub.add_parser("add-learner", help="add a non-voting node; returns once it has caught up")
    _common(p, timeout=LEARNER_TIMEOUT,
            timeout_help="how long the learner may take to catch up (s); past it, exit 1: it was added, "
                         "but is not running, reachable or caught up")
    p.add_argument("--id", type=_non_negative, required=True, help="the new node's id")
    p.add_argument("--raft", type=host_port, required=True, metavar="HOST:PORT", help="its Raft (TCP) address")
    p.add_argument("--http", type=host_port, required=True, metavar="HOST:PORT", help="its HTTP API address")
    p.add_argument("--client", type=host_port, metavar="HOST:PORT", help="its binary client address (serve --client)")
    p = csub.add_parser("change-membership", help="make these nodes the voters")
    _common(p)
    p.add_argument("--voters", type=id_list, required=True, metavar="ID[,ID...]",
                   help="the ids of every voter after the change")
    p.add_argument("--retain", action="store_true", help="keep removed voters as learners")
    p.add_argument("--force", action="store_true",
                   help="skip the check that a quorum of the new voters is healthy (acked the leader recently)")
    p = csub.add_parser("remove-node", help="take a node out of the voters and learners (the leader hands over "
                                            "first); returns once applied")
    _common(p)
    p.add_argument("--id", type=_non_negative, required=True, help="the node to remove")
    p.add_argument("--force", action="store_true",
                   help="skip the check that the voters left have a healthy quorum")
    p = csub.add_parser("snapshot", help="backups of the KV state")
    ssub = p.add_subparsers(dest="snapshot_command", parser_class=OneLineParser, required=True, metavar="COMMAND")
    p = ssub.add_parser("save", help="save a backup of the whole state at a linearizable point to FILE "
                                     "(restore it with openraft-fast restore)")
    _common(p, timeout=60.0)
    p.add_argument("file", metavar="FILE", help="where to write it (atomically)")
    p = csub.add_parser("transfer-leader", help="hand leadership to another voter")
    _common(p)
    p.add_argument("--to", type=_non_negative, required=True, metavar="ID", help="the voter to hand leadership to")
    p = csub.add_parser("status", help="every member of the cluster: role, term, log, lag and health "
                                       "(exit 1 unless every member is healthy)")
    _common(p, timeout=2.0, timeout_help="bound of each node's answer (s)")
    p.add_argument("--json", action="store_true", help="print the same data as JSON")

    k = one_line_errors(sub.add_parser("kv", help="read and write keys"))
    ksub = k.add_subparsers(dest="kv_command", parser_class=OneLineParser, required=True, metavar="COMMAND")
    p = ksub.add_parser("put", help="set a key")
    _common(p)
    p.add_argument("key", help="the key")
    p.add_argument("value", nargs="?", help="the value; - reads it from stdin")
    p.add_argument("--file", metavar="PATH", help="read the value from this file (UTF-8)")
    p.add_argument("--no-retry", action="store_true", help="do not retry after an ambiguous failure (exit 3)")
    p = ksub.add_parser("get", help="read a key (exit 1 if absent)")
    _common(p)
    p.add_argument("key", help="the key")
    p.add_argument("--consistency", choices=["linearizable", "lease", "local"], default="linearizable",
                   help="linearizable (read index, default), lease (the leader lease) or local (this node, may be stale)")
    p = ksub.add_parser("delete", help="delete a key, or every key under --prefix (in one revision)")
    _common(p)
    p.add_argument("key", nargs="?", help="the key")
    p.add_argument("--prefix", help="delete every key that starts with this (not empty) instead")
    p.add_argument("--no-retry", action="store_true", help="do not retry after an ambiguous failure (exit 3)")
    p = ksub.add_parser("txn", help="a transaction: compares, then the success or failure ops, in one revision "
                                    "(exit 1 when the compares fail)")
    _common(p)
    p.add_argument("request", help='the transaction as JSON: {"compare": [...], "success": [...], "failure": [...]} '
                                   '(docs/kv.md); - reads it from stdin')
    p = ksub.add_parser("watch", help="print every change under PREFIX as a line of JSON, in revision order, "
                                      "until interrupted (rides out failovers)")
    _common(p)
    p.add_argument("prefix", help="the prefix of the keys to watch (with --key: the one key)")
    p.add_argument("--key", action="store_true", help="watch exactly this key, not a prefix")
    p.add_argument("--from-revision", type=_positive, metavar="R",
                   help="start with the changes at revision R and later (default: after the current revision)")
    p = ksub.add_parser("lock", help="run COMMAND while holding the lock NAME (waits for it, fairly); its exit "
                                     "code is ours. The child gets the fencing token in OPENRAFT_FAST_LOCK_TOKEN "
                                     "and is stopped if the lock is lost")
    _common(p)
    p.add_argument("name", help="the lock's name (a key prefix)")
    p.add_argument("argv", nargs="+", metavar="COMMAND", help="the command and its arguments, after --")
    p.add_argument("--ttl", type=bounded(float, 0, inclusive=False, what="seconds"), default=10.0,
                   help="the lock's lease: released this long after this process dies (default 10 s)")
    p = ksub.add_parser("cas", help="compare-and-swap: set if the value (or revision) is the expected one")
    _common(p)
    p.add_argument("key", help="the key")
    p.add_argument("value", help="the new value")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--expected", help="the value the key must have")
    g.add_argument("--expected-absent", action="store_true", help="the key must be absent")
    g.add_argument("--expected-revision", type=_non_negative, help="the revision the key must have (0: absent)")
    p = ksub.add_parser("list", help="list keys by prefix")
    _common(p)
    p.add_argument("--prefix", default="", help="only keys that start with this")
    p.add_argument("--limit", type=_non_negative, help="at most this many items")
    p.add_argument("--consistency", choices=["linearizable", "lease", "local"], default="linearizable",
                   help="linearizable (read index, default), lease (the leader lease) or local (this node, may be stale)")


def _client(args, endpoints=None):
    from openraft_fast.kv.client import KvClient
    ssl = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        from openraft_fast.kv.tls import client_context
        ssl = client_context(args.tls_cert, args.tls_key, args.tls_ca)
    timeout = args.timeout
    if getattr(args, "cluster_command", None) == "add-learner":
        timeout += LEARNER_CALL_MARGIN
    return KvClient(endpoints or args.endpoints, timeout=timeout, request_timeout=timeout, ssl=ssl)


def _print(obj: Any) -> None:
    print(json.dumps(obj, separators=(",", ":")))


def format_status_table(status: Dict[str, Any]) -> str:
    """One row per member: id, HTTP address, role, term, last log, applied, lag, health."""
    rows = [("ID", "ADDRESS", "ROLE", "TERM", "LAST_LOG", "APPLIED", "LAG", "HEALTH")]
    for m in status["members"]:
        rows.append((str(m["id"]), str(m.get("http") or "-"), str(m.get("role") or "-"),
                     *("-" if m.get(k) is None else str(m[k]) for k in ("term", "last_log", "applied", "lag")),
                     m["health"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


async def _cluster(args) -> int:
    cmd = args.cluster_command
    if cmd == "init":
        endpoints = args.endpoint or args.endpoints
        if not endpoints:
            raise ValueError("give --endpoint URL (or --endpoints)")
        ids = [n[0] for n in args.node]
        if len(set(ids)) != len(ids):
            raise ValueError(f"node ids repeat: {ids}")
        async with _client(args, endpoints[:1]) as kv:
            _print(await kv.init({n[0]: n[1:] for n in args.node}))
        return 0
    async with _client(args) as kv:
        if cmd == "add-learner":
            _print(await kv.add_learner(args.id, f"{args.raft[0]}:{args.raft[1]}", f"{args.http[0]}:{args.http[1]}",
                                        args.timeout, client=None if args.client is None else
                                        f"{args.client[0]}:{args.client[1]}"))
        elif cmd == "change-membership":
            _print(await kv.change_membership(args.voters, args.retain, args.force))
        elif cmd == "remove-node":
            _print(await kv.remove_node(args.id, args.force))
        elif cmd == "snapshot":
            from openraft_fast.kv.backup import read_backup, write_atomically
            data = await kv.backup()
            b = read_backup(data)
            try:
                write_atomically(args.file, data)
            except OSError as exc:
                raise ValueError(f"cannot write {args.file}: {exc}") from None
            _print({"revision": b.revision, "bytes": len(data), "keys": b.keys})
        elif cmd == "transfer-leader":
            _print(await kv.transfer_leader(args.to))
        elif cmd == "status":
            status = await kv.members_status()
            healthy = all(m["health"] == "ok" for m in status["members"])
            if args.json:
                _print({**status, "healthy": healthy})
            else:
                print(format_status_table(status))
            if not healthy:
                bad = [f"{m['id']}: {m['health']}" for m in status["members"] if m["health"] != "ok"]
                print(f"openraft-fast cluster status: not every member is healthy ({', '.join(bad)})",
                      file=sys.stderr)
                return EXIT_FAILED
    return 0


def _put_value(args) -> str:
    """The value of `kv put`: the argument, stdin for "-", or --file; exactly one."""
    if (args.value is None) == (args.file is None):
        raise ValueError("give the value as an argument, - (stdin) or --file PATH (exactly one)")
    if args.file is not None:
        try:
            with open(args.file, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read --file {args.file}: {exc}") from None
    if args.value == "-":
        return sys.stdin.read()
    return args.value


async def _kv(args) -> int:
    cmd = args.kv_command
    async with _client(args) as kv:
        if cmd == "put":
            _print({"revision": await kv.put(args.key, _put_value(args), retry_ambiguous=not args.no_retry)})
        elif cmd == "get":
            item = await kv.get(args.key, args.consistency)
            if item is None:
                print(f"openraft-fast kv get: error: key {args.key!r} not found", file=sys.stderr)
                return EXIT_FAILED
            _print({"value": item.value, "revision": item.revision})
        elif cmd == "delete":
            if (args.key is None) == (args.prefix is None):
                raise ValueError("give a key or --prefix PREFIX (exactly one)")
            if args.prefix is not None:
                revision, deleted = await kv.delete_range(args.prefix, retry_ambiguous=not args.no_retry)
                _print({"revision": revision, "deleted": deleted})
            else:
                _print({"revision": await kv.delete(args.key, retry_ambiguous=not args.no_retry)})
        elif cmd == "txn":
            text = sys.stdin.read() if args.request == "-" else args.request
            try:
                request = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"the transaction is not valid JSON: {exc}") from None
            if not isinstance(request, dict):
                raise ValueError("the transaction must be a JSON object")
            r = await kv.txn(request.get("compare", ()), request.get("success", ()), request.get("failure", ()))
            _print({"succeeded": r.succeeded, "revision": r.revision, "results": r.results})
            return 0 if r.succeeded else EXIT_FAILED
        elif cmd == "watch":
            changes = kv.watch(None if args.key else args.prefix, key=args.prefix if args.key else None,
                               from_revision=args.from_revision)
            async for c in changes:
                print(json.dumps({"type": c.type, "key": c.key, "value": c.value, "revision": c.revision,
                                  "prev_revision": c.prev_revision}, separators=(",", ":")), flush=True)
        elif cmd == "lock":
            return await _run_locked(kv, args)
        elif cmd == "cas":
            if args.expected_revision is not None:
                r = await kv.cas(args.key, args.value, expected_revision=args.expected_revision)
            else:
                r = await kv.cas(args.key, args.value, expected=None if args.expected_absent else args.expected)
            _print({"ok": True, "revision": r.revision} if r.ok else
                   {"ok": False, "value": r.value, "revision": r.revision})
            return 0 if r.ok else EXIT_FAILED
        elif cmd == "list":
            items = await kv.list(args.prefix, args.consistency, args.limit)
            _print({"items": [{"key": i.key, "value": i.value, "revision": i.revision} for i in items]})
    return 0


async def _run_locked(kv, args) -> int:
    """`kv lock NAME -- COMMAND`: the command runs while the lock is held."""
    async with kv.lock(args.name, args.ttl) as lock:
        env = dict(os.environ, OPENRAFT_FAST_LOCK_TOKEN=str(lock.fencing_token))
        try:
            child = await asyncio.create_subprocess_exec(*args.argv, env=env)
        except OSError as exc:
            raise ValueError(f"cannot run {args.argv[0]!r}: {exc}") from None
        done = asyncio.ensure_future(child.wait())
        lost = asyncio.ensure_future(lock.lost.wait())
        try:
            await asyncio.wait([done, lost], return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                print(f"openraft-fast kv lock: error: the lock {args.name!r} was lost (its lease expired); "
                      f"stopping the command", file=sys.stderr)
                child.terminate()
                await done
                return EXIT_FAILED
            return done.result()
        finally:
            lost.cancel()
            if not done.done():
                child.kill()
                await done


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(args) -> int:
    from openraft_fast._aio import run
    from openraft_fast.errors import InvalidArgument, InvalidArgumentType, RaftError
    from openraft_fast.kv.errors import KvOutcomeUnknown
    from openraft_fast.kv.endpoints import missing_service_dependency
    name = f"openraft-fast {args.command} {getattr(args, 'cluster_command', None) or args.kv_command}"
    missing = missing_service_dependency()
    if missing:
        print(f"{name}: error: {missing}", file=sys.stderr)
        return EXIT_FAILED
    if args.endpoints is None and not (args.command == "cluster" and args.cluster_command == "init"):
        print(f"{name}: error: no endpoints: give --endpoints URL[,URL...] or set {ENDPOINTS_ENV}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(_cluster(args) if args.command == "cluster" else _kv(args))
    except KeyboardInterrupt:           # how `kv watch` ends
        return 130
    except KvOutcomeUnknown as exc:
        print(f"{name}: outcome unknown: {_line(exc)}", file=sys.stderr)
        return EXIT_OUTCOME_UNKNOWN
    except (InvalidArgument, InvalidArgumentType, ValueError) as exc:
        print(f"{name}: error: {_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (RaftError, OSError) as exc:
        print(f"{name}: error: {_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
