"""The `openraft-fast` command: one subcommand per module of this package (bench, serve, cluster
and kv in ops, demo)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from openraft_fast.cli import bench, demo, ops, restore, serve


def build_parser() -> argparse.ArgumentParser:
    from openraft_fast import __version__
    p = argparse.ArgumentParser(prog="openraft-fast", description="openraft_fast: Raft for Python")
    p.add_argument("--version", action="version", version=f"openraft-fast {__version__}")
    sub = p.add_subparsers(dest="command")
    bench.add_parser(sub)
    serve.add_parser(sub)
    ops.add_parsers(sub)
    demo.add_parser(sub)
    restore.add_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)       # no command: a usage error, as argparse's own
        return 2
    if args.command == "serve":
        return serve.main(args)
    if args.command == "demo":
        return demo.main(args)
    if args.command in ("cluster", "kv"):
        return ops.main(args)
    if args.command == "bench":
        return bench.main(args)
    if args.command == "restore":
        return restore.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
