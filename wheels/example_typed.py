"""A small program on the public API; CI type-checks it with `mypy --strict` against the
installed package (py.typed + the compiled modules' .pyi stubs) and runs it."""
from __future__ import annotations

import openraft_fast as orf
from openraft_fast.network import LocalRouter
from openraft_fast.storage import MemLogStore, MemStateMachine


async def main() -> int:
    router = LocalRouter()
    nodes: dict[int, orf.Raft] = {}
    for i in (1, 2, 3):
        nodes[i] = await orf.Raft.start(i, orf.Config(), router.factory(i), MemLogStore(), MemStateMachine())
        router.add(nodes[i])
    await nodes[1].initialize({1: orf.Node("n1"), 2: orf.Node("n2"), 3: orf.Node("n3")})
    await nodes[1].wait(timeout=5.0).state(orf.ServerState.LEADER)
    resp: orf.ClientWriteResponse = await nodes[1].client_write(b"\x92\xa1k\xa1v")
    read_at: orf.LogId = await nodes[1].ensure_linearizable(orf.ReadPolicy.READ_INDEX)
    leader: int | None = nodes[1].current_leader()
    print("wrote:", resp, "read at:", read_at, "leader:", leader)
    for n in nodes.values():
        await n.shutdown()
    return 0 if leader == 1 else 1


if __name__ == "__main__":
    raise SystemExit(orf.run(main()))
