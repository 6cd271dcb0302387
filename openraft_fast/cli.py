"""The `openraft-fast` command."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from openraft_fast._aio import run


def _ints(text: str) -> List[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("values must be positive")
    return values


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    from openraft_fast import __version__
    p = argparse.ArgumentParser(prog="openraft-fast", description="openraft_fast: Raft for Python")
    p.add_argument("--version", action="version", version=f"openraft-fast {__version__}")
    sub = p.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="cluster write benchmark (DESIGN B1/B2)")
    b.add_argument("--transport", choices=["local"], default="local")
    b.add_argument("--nodes", type=_positive(int), default=3)
    b.add_argument("--clients", type=_ints, default=[1, 64, 256, 1024])
    b.add_argument("--batch", type=_positive(int), default=1, help="entries per client_write_many (1: client_write)")
    b.add_argument("--seconds", type=_positive(float), default=3.0)
    b.add_argument("--payload", type=int, default=0, help="payload bytes")
    b.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    b.add_argument("--no-uvloop", action="store_true", help="use stock asyncio")
    b.add_argument("--store", choices=["mem", "wal"], default="mem",
                   help="wal: each node on its own WalLogStore, next to the disk's own sync rate (B4)")
    b.add_argument("--data", metavar="DIR", help="with --store wal: where the logs go (default: a temp dir)")
    from openraft_fast import cli_ops, cli_serve
    cli_serve.add_parser(sub)
    cli_ops.add_parsers(sub)
    from openraft_fast import demo
    demo.add_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from openraft_fast import __version__
        print(f"openraft-fast {__version__}")
        parser.print_help()
        return 0
    if args.command == "serve":
        from openraft_fast import cli_serve
        return cli_serve.main(args)
    if args.command == "demo":
        from openraft_fast import demo
        return demo.main(args)
    if args.command in ("cluster", "kv"):
        from openraft_fast import cli_ops
        return cli_ops.main(args)
    if args.command == "bench":
        from openraft_fast.bench import bench_local, format_table, live_printer, results_json
        if args.payload < 0:
            print("--payload must be >= 0", file=sys.stderr)
            return 2
        if args.json:
            folder = os.path.dirname(os.path.abspath(args.json))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(args.json):
                print(f"--json: cannot write {args.json!r} (no such writable directory {folder!r})", file=sys.stderr)
                return 2
        if args.data and not (os.path.isdir(args.data) and os.access(args.data, os.W_OK)):
            print(f"--data: {args.data!r} is not a writable directory", file=sys.stderr)
            return 2
        show = live_printer()
        results = run(bench_local(args.nodes, args.clients, args.batch, args.payload, args.seconds, show,
                                  store=args.store, data=args.data),
                      use_uvloop=False if args.no_uvloop else None)
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(format_table(results))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(results_json(results), f, indent=2)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
