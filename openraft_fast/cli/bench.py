"""`openraft-fast bench`: the cluster write benchmarks (openraft_fast.bench) from the command line."""
from __future__ import annotations

import json
import os
import sys

from openraft_fast._aio import run
from openraft_fast.cli.args import bounded, int_list


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="cluster write benchmark (DESIGN B1/B2; B3 with --transport tcp)")
    b.add_argument("--transport", choices=["local", "tcp"], default="local",
                   help="local: one process (B1/B2); tcp: one process per node on 127.0.0.1, with the TCP floor (B3)")
    b.add_argument("--nodes", type=int_list(1), default=[3],
                   help="voters, or a list run in turn: 3,5,7 (B6: cost per write relative to the fewest)")
    b.add_argument("--clients", type=int_list(1), default=None,
                   help="client counts (default local 1,64,256,1024; tcp 1,256)")
    b.add_argument("--batch", type=bounded(int, 1, what="an integer"), default=1,
                   help="entries per client_write_many (1: client_write)")
    b.add_argument("--seconds", type=bounded(float, 0, inclusive=False), default=3.0,
                   help="measured seconds per row (default 3)")
    b.add_argument("--payload", type=int_list(0, "sizes"), default=None,
                   help="payload bytes, a list (default local 0; tcp 16,256)")
    b.add_argument("--service", choices=["http", "binary", "control"],
                   help="the KV service: 3 `serve` processes loaded over HTTP (wrk) or the binary client protocol "
                        "(connections, or requests in flight, 1,16,64,256; 16 B), next to the engine's own "
                        "--transport tcp --store wal rate in the same run; control: watch fan-out, lease "
                        "keepalives, transactions and lock cycles per second")
    b.add_argument("--watchers", type=bounded(int, 1, what="an integer"), default=1000,
                   help="--service control: watchers of the fan-out row (default 1000)")
    b.add_argument("--load", choices=["auto", "wrk", "python"], default="auto",
                   help="--service: the load generator (auto: wrk when installed, else python, a client of ours "
                        "that costs more per request)")
    b.add_argument("--peer", choices=["pysyncobj"], help="also run this library in the same harness (tcp only)")
    b.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    b.add_argument("--no-uvloop", action="store_true", help="use stock asyncio")
    b.add_argument("--store", choices=["mem", "wal"], default="mem",
                   help="wal: each node on its own WalLogStore, next to the disk's own sync rate (B4)")
    b.add_argument("--data", metavar="DIR", help="with --store wal: where the logs go (default: a temp dir)")
    b.add_argument("--floors", action="store_true",
                   help="local: also run the in-process floor and the per-op future ceiling after each row")
    b.add_argument("--log-entries", type=bounded(int, 1, what="an integer"), metavar="N",
                   help="B6, local: fill the leader's log to N entries (kept: no snapshots) and measure, "
                        "then measure an empty log; reports RSS per entry")
    b.add_argument("--gc", choices=["freeze", "default"], default="freeze",
                   help="local: freeze: gc.freeze() once the cluster is up, as `serve` does (README, Performance); "
                        "default: leave the collector as Python sets it")
    b.add_argument("--profile", metavar="FILE",
                   help="run under cProfile: write FILE (.pstats) and print the top 25 by tottime to stderr")


def main(args) -> int:
    from openraft_fast.bench.results import format_table, live_printer, results_json
    if args.service == "control":
        return _control(args)
    tcp = args.transport == "tcp"
    clients = args.clients or ([1, 256] if tcp else [1, 64, 256, 1024])
    payloads = args.payload if args.payload is not None else ([16, 256] if tcp else [0])
    if args.peer and not tcp:
        print("--peer needs --transport tcp", file=sys.stderr)
        return 2
    if tcp and min(args.nodes) < 2:
        print("--transport tcp needs --nodes >= 2", file=sys.stderr)
        return 2
    if tcp and args.floors:
        print("--floors is for --transport local (B3 over TCP has its own floor)", file=sys.stderr)
        return 2
    if args.service and (tcp or args.peer or args.floors or args.log_entries or args.nodes != [3] or args.batch != 1):
        print("--service runs its own 3-node cluster: no --transport, --peer, --floors, --log-entries, --nodes "
              "or --batch", file=sys.stderr)
        return 2
    load = args.load
    if args.service == "binary":
        if load != "auto":
            print("--load is for --service http (binary has its own load client)", file=sys.stderr)
            return 2
        load = "binary"
    elif args.service:
        from openraft_fast.bench.service import NO_WRK, wrk_path
        if load == "auto":
            load = "wrk" if wrk_path() is not None else "python"
        if load == "wrk" and wrk_path() is None:
            print(NO_WRK, file=sys.stderr)
            return 2
    elif load != "auto":
        print("--load is for --service", file=sys.stderr)
        return 2
    if args.log_entries and (tcp or args.store != "mem" or args.floors):
        print("--log-entries is for --transport local with --store mem, without --floors", file=sys.stderr)
        return 2
    if args.log_entries:
        from openraft_fast.bench.scale import check_fill_fits
        too_big = check_fill_fits(args.log_entries, payloads, args.nodes)
        if too_big:
            print(too_big, file=sys.stderr)
            return 2
    if args.peer == "pysyncobj":
        from openraft_fast.bench.peers.pysyncobj import available
        if not available():
            print("--peer pysyncobj: the pysyncobj package is not installed "
                  "(pip install 'openraft-fast[bench]' or pip install pysyncobj)", file=sys.stderr)
            return 2
    for flag, path in (("--json", args.json), ("--profile", args.profile)):
        if path:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(path):
                print(f"{flag}: cannot write {path!r} (no such writable directory {folder!r})", file=sys.stderr)
                return 2
    if args.data and not (os.path.isdir(args.data) and os.access(args.data, os.W_OK)):
        print(f"--data: {args.data!r} is not a writable directory", file=sys.stderr)
        return 2
    show = live_printer()
    use_uvloop = False if args.no_uvloop else None
    fills: list = []
    freeze_gc = args.gc == "freeze"

    def measure() -> list:
        results = []
        if args.service:
            from openraft_fast.bench.service import bench_service
            from openraft_fast.bench.tcp import bench_tcp
            counts = args.clients or [1, 16, 64, 256]
            size = payloads[0] if args.payload is not None else 16
            results += run(bench_tcp(3, counts, 1, [size], args.seconds, progress=show, use_uvloop=use_uvloop,
                                     systems=["ours"], store="wal", data=args.data), use_uvloop=use_uvloop)
            results += run(bench_service(args.service, counts, size, args.seconds, show, args.data, load),
                           use_uvloop=use_uvloop)
            return results
        for nodes in args.nodes:
            if tcp:
                from openraft_fast.bench.tcp import bench_tcp
                results += run(bench_tcp(nodes, clients, args.batch, payloads, args.seconds, args.peer, show,
                                         use_uvloop=use_uvloop), use_uvloop=use_uvloop)
                continue
            for size in payloads:
                if args.log_entries:
                    from openraft_fast.bench.scale import bench_log_entries
                    rows, fill = run(bench_log_entries(nodes, clients, args.batch, size, args.seconds,
                                                       args.log_entries, show, freeze_gc=freeze_gc),
                                                     use_uvloop=use_uvloop)
                    results += rows
                    fills.append(fill)
                else:
                    from openraft_fast.bench.local import bench_local
                    results += run(bench_local(nodes, clients, args.batch, size, args.seconds, show,
                                               store=args.store, data=args.data, floors=args.floors,
                                               freeze_gc=freeze_gc),
                                   use_uvloop=use_uvloop)
        return results

    from openraft_fast.errors import RaftError
    try:
        if args.profile:
            from openraft_fast.bench.profiling import profiled
            with profiled(args.profile):
                results = measure()
        else:
            results = measure()
    except RaftError as exc:     # a follower process failed to start, a write failed, ...
        print(f"\nbench --transport {args.transport} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(format_table(results))
    if args.service:
        from openraft_fast.bench.service import format_service_ratios
        print(format_service_ratios(results))
        print(f"load generator: {load}")
    elif tcp or args.floors:
        from openraft_fast.bench.results import format_ratios
        print(format_ratios(results))
    if len(args.nodes) > 1 and not args.log_entries:
        from openraft_fast.bench.scale import format_node_costs
        print(format_node_costs(results))
    if args.log_entries:
        from openraft_fast.bench.scale import format_log_costs
        print(format_log_costs(results, fills))
    if args.profile:
        print(f"profiled: {args.profile} (figures under cProfile are slower than without it)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results_json(results), f, indent=2)
    return 0


def _control(args) -> int:
    """bench --service control: its own table (bench.control)."""
    from openraft_fast.bench.control import bench_control, format_control
    from openraft_fast.errors import RaftError
    try:
        rows = run(bench_control(args.seconds, args.watchers, args.data, lambda m: print(m, file=sys.stderr)),
                   use_uvloop=not args.no_uvloop)
    except RaftError as exc:
        print(f"openraft-fast bench: error: {exc}", file=sys.stderr)
        return 1
    print(format_control(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0
