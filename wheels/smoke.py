"""Smoke test for an INSTALLED openraft_fast (wheel or sdist install), run outside the source tree.

    python wheels/smoke.py        # from any directory but the repository root

Checks: the package comes from site-packages, not a source checkout; every core module is a
compiled extension; the internal microbench module is not shipped; the stubs and py.typed are
installed; a 3-node in-process cluster elects a leader and commits writes; the CLI starts.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

# Never test the source tree by accident: drop this script's folder and the cwd from the path.
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if p not in ("", ".", here, os.getcwd())]

import openraft_fast as orf  # noqa: E402
from openraft_fast.network import LocalRouter  # noqa: E402
from openraft_fast.storage import MemLogStore, MemStateMachine  # noqa: E402

CORE = ["types", "quorum", "inflight", "progress", "tracker", "log", "messages", "commands", "record", "engine", "walrec", "codec",
        "events", "writes", "applier", "peers", "inbox", "executor"]
EXT = (".so", ".pyd")


def check_install() -> None:
    pkg = os.path.dirname(os.path.abspath(orf.__file__))
    print("openraft_fast", orf.__version__, "from", pkg)
    if os.path.exists(os.path.join(pkg, os.pardir, "setup.py")):
        raise SystemExit(f"FAIL: imported from a source tree ({pkg}), not an installed package")
    for name in CORE:
        mod = importlib.import_module(f"openraft_fast._core.{name}")
        path = mod.__file__ or ""
        if not path.endswith(EXT):
            raise SystemExit(f"FAIL: openraft_fast._core.{name} is not compiled: {path}")
        if not os.path.exists(os.path.join(pkg, "_core", f"{name}.pyi")):
            raise SystemExit(f"FAIL: missing stub openraft_fast/_core/{name}.pyi")
    core_dir = os.path.join(pkg, "_core")
    leftovers = [f for f in os.listdir(core_dir) if f.endswith((".c", ".html")) or f.startswith("microbench")]
    if leftovers:
        raise SystemExit(f"FAIL: build leftovers or internal modules shipped: {leftovers}")
    if not os.path.exists(os.path.join(pkg, "py.typed")):
        raise SystemExit("FAIL: py.typed not installed")
    print("compiled core:", ", ".join(CORE))


async def cluster() -> None:
    router = LocalRouter()
    nodes = {}
    for i in (1, 2, 3):
        nodes[i] = await orf.Raft.start(i, orf.Config(), router.factory(i), MemLogStore(), MemStateMachine())
        router.add(nodes[i])
    try:
        await nodes[1].initialize({1: orf.Node("n1"), 2: orf.Node("n2"), 3: orf.Node("n3")})
        await nodes[1].wait(timeout=5.0).state(orf.ServerState.LEADER)
        last = None
        for k in range(100):
            key = f"k{k}".encode()
            # msgpack ["kN", "v"]: fixarray(2), fixstr(len), key, fixstr(1), "v"
            last = await nodes[1].client_write(b"\x92" + bytes([0xA0 | len(key)]) + key + b"\xa1v")
        many = await nodes[1].client_write_many([b"\x92\xa1m\xa1v"] * 50)
        read_at = await nodes[1].ensure_linearizable(orf.ReadPolicy.READ_INDEX)
        print("leader:", nodes[1].current_leader(), "last write:", last, "batch:", many, "read at:", read_at)
        if not nodes[1].is_leader():
            raise SystemExit("FAIL: node 1 is not the leader after the writes")
    finally:
        for n in nodes.values():
            await n.shutdown()


def check_cli() -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "openraft-fast")
    if not os.path.exists(exe):
        exe = shutil.which("openraft-fast") or ""
    if not exe:
        raise SystemExit("FAIL: the openraft-fast command is not installed")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or "bench" not in out.stdout:
        raise SystemExit(f"FAIL: openraft-fast --help: rc={out.returncode}\n{out.stdout}{out.stderr}")
    out = subprocess.run([exe, "bench", "--nodes", "3", "--clients", "1,4", "--seconds", "0.3"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"FAIL: openraft-fast bench: rc={out.returncode}\n{out.stdout}{out.stderr}")
    print("cli:", exe, "ok")
    print(out.stdout.strip())


def main() -> None:
    check_install()
    orf.run(cluster())
    check_cli()
    print("smoke: OK")


if __name__ == "__main__":
    main()
