"""Sending a snapshot to a follower (runtime concern): the engine's SendSnapshot command names
the target; the current snapshot is read from the state machine and streamed by the network
client in a task of its own, so heartbeats and replication to others go on meanwhile."""
from __future__ import annotations

import logging

from openraft_fast._core.messages import InstallSnapshotRequest
from openraft_fast.errors import RaftError, StorageError

log = logging.getLogger("openraft_fast")


async def send_snapshot(core, target, req: InstallSnapshotRequest) -> None:
    engine = core.engine
    try:
        snap = await core.sm.get_current_snapshot()
        if snap is None:
            raise StorageError("no snapshot to send")
        client = core.peers.client(target)
        if client is None:
            raise RaftError(f"no node for target {target}")
        resp = await client.install_snapshot(InstallSnapshotRequest(
            req.vote, snap.meta, snap.data, req.msg_id, req.seq, req.sent_at))
    except Exception as exc:
        if core.stopped is None:
            log.debug("node %s: snapshot to %s failed: %r", core.node_id, target, exc)
            core.post(engine.on_snapshot_send_failed, target, req.msg_id)
        return
    if core.stopped is None:
        core.post(engine.recv_snapshot_response, target, resp)
