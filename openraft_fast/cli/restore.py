"""`openraft-fast restore FILE --data DIR --id N --raft HOST:PORT --http HOST:PORT`: a new data
directory from a backup (`cluster snapshot save`). `serve` on it with the same id and addresses
is a one-voter cluster holding the backup's state that elects itself: no `cluster init`; grow it
with `cluster add-learner` and `change-membership`. A corrupt or foreign file is refused and
nothing is written."""
from __future__ import annotations

import json
import sys

from openraft_fast.cli.args import bounded, host_port, one_line_errors


def add_parser(sub) -> None:
    p = one_line_errors(sub.add_parser("restore", help="create a node's data directory from a backup",
                                       description=__doc__.split("\n\n")[0]))
    p.add_argument("file", metavar="FILE", help="the backup (openraft-fast cluster snapshot save)")
    p.add_argument("--data", required=True, metavar="DIR", help="the new data directory (must not exist or be empty)")
    p.add_argument("--id", type=bounded(int, 0, what="a node id"), required=True, help="the node's id")
    p.add_argument("--raft", type=host_port, required=True, metavar="HOST:PORT", help="its Raft (TCP) address")
    p.add_argument("--http", type=host_port, required=True, metavar="HOST:PORT", help="its HTTP API address")


def main(args) -> int:
    from openraft_fast._aio import run
    from openraft_fast.cli.serve import ServeError, _node_file
    from openraft_fast.errors import RaftError
    from openraft_fast.kv.backup import restore, read_backup
    try:
        with open(args.file, "rb") as f:
            data = f.read()
    except OSError as exc:
        print(f"openraft-fast restore: error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        backup = read_backup(data, args.file)
        run(restore(backup, args.data, args.id, f"{args.raft[0]}:{args.raft[1]}", f"{args.http[0]}:{args.http[1]}"))
        _node_file(args.data, args.id)
    except (RaftError, OSError, ValueError, ServeError) as exc:
        print(f"openraft-fast restore: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(json.dumps({"revision": backup.revision, "keys": backup.keys, "data": args.data}, separators=(",", ":")))
    return 0
