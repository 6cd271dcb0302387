"""ReplicatedNode: one process's member of a cluster serving a replicated object, wired from
the durable WAL, the TCP transport and the runtime."""
from __future__ import annotations

import json
import logging
import os
import ssl as _ssl
from typing import Any, Dict, Mapping, Optional, Tuple

from openraft_fast._core.types import Node
from openraft_fast.config import Config
from openraft_fast.errors import ConfigError, InitializeError, InvalidArgument, InvalidArgumentType
from openraft_fast.raft import Raft, ReadPolicy
from openraft_fast.replicated.object import (ReplicatedObject, _BINDING, _Query, pack_call, pack_result,
                                            unpack_result)
from openraft_fast.replicated.state_machine import ReplicatedStateMachine

log = logging.getLogger("openraft_fast.replicated")

REGISTRY_FILE = "commands.json"
SslContexts = Tuple[Optional[_ssl.SSLContext], Optional[_ssl.SSLContext]]


def _parse_peers(peers: Mapping[int, str], node_id: int) -> Dict[int, Tuple[str, int]]:
    if not isinstance(peers, Mapping) or not peers:
        raise InvalidArgumentType(f"peers must be a non-empty mapping {{node id: 'host:port'}}, got {peers!r}")
    out = {}
    for i, addr in peers.items():
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise InvalidArgument(f"peers: node ids must be ints >= 0, got {i!r}")
        host, sep, port = str(addr).rpartition(":")
        if not isinstance(addr, str) or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"peers[{i}] must be 'host:port', got {addr!r}")
        out[i] = (host.strip("[]"), int(port))
    if node_id not in out:
        raise InvalidArgument(f"peers must include this node ({node_id}): it listens on its own entry")
    return out


def _check_registry(data_dir: str, obj: ReplicatedObject) -> None:
    """The commands the log may hold must still exist: a command removed or renamed since the
    data directory was written would make old entries fail on replay. New commands are fine."""
    path = os.path.join(data_dir, REGISTRY_FILE)
    names = type(obj).command_names()
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)["commands"]
    except FileNotFoundError:
        saved = None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError("data_dir", f"{path} is not a command registry: {exc}") from None
    if saved is not None:
        gone = sorted(set(saved) - set(names))
        if gone:
            raise ConfigError("obj", f"{type(obj).__name__} lacks commands {gone} that {data_dir} was written "
                                     f"with; its log may hold calls of them (keep them, or start afresh)")
        if set(saved) == set(names):
            return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"class": type(obj).__name__, "commands": names}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ReplicatedNode:
    """A started member of the cluster that serves `obj`. Create with `await
    ReplicatedNode.start(...)`; `raft` is the node's Raft handle; `await close()` stops it."""

    def __init__(self, obj: ReplicatedObject, raft: Raft, server, factory, log_store, sm) -> None:
        self.obj = obj
        self.raft = raft
        self.state_machine = sm
        self._server = server
        self._factory = factory
        self._log_store = log_store
        self._closed = False

    @classmethod
    async def start(cls, obj: ReplicatedObject, node_id: int, peers: Mapping[int, str], data_dir,
                    config: Optional[Config] = None, ssl: Optional[SslContexts] = None) -> "ReplicatedNode":
        """Serve `obj` as node `node_id` of the cluster whose voters are `peers`, `{id:
        "host:port"}` with this node included; it listens on its own entry. Start every node
        with the same peers: a pristine cluster initializes itself once (every pristine node
        proposes the same initial membership, so it does not matter which starts first), and a
        node restarted on its `data_dir` rejoins with its data (the WAL and the object's last
        snapshot; the log after it is replayed). `ssl` is a pair (server context, client
        context) for TLS between the nodes (openraft_fast.kv.tls makes both from PEM files).

        A node whose data directory was lost must not start again under its old id with the
        same peers: it would have forgotten its votes. Give it a new id and change the
        membership (Raft.add_learner, Raft.change_membership) instead."""
        from openraft_fast.network.tcp import TcpNetworkFactory, serve_tcp
        from openraft_fast.storage.wal import WalLogStore

        if not isinstance(obj, ReplicatedObject):
            raise InvalidArgumentType(f"obj must be a ReplicatedObject, got {type(obj).__name__}")
        if obj.__dict__.get(_BINDING) is not None:
            raise InvalidArgument("this object is already served by a node")
        if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id < 0:
            raise InvalidArgumentType(f"node_id must be an int >= 0, got {node_id!r}")
        addrs = _parse_peers(peers, node_id)
        config = Config() if config is None else config
        if not isinstance(config, Config):
            raise InvalidArgumentType(f"config must be a Config, got {type(config).__name__}")
        server_ssl, client_ssl = (None, None) if ssl is None else ssl
        data_dir = os.fspath(data_dir)
        os.makedirs(data_dir, exist_ok=True)
        _check_registry(data_dir, obj)
        log_store = WalLogStore(os.path.join(data_dir, "log"))
        factory = raft = server = None
        try:
            sm = ReplicatedStateMachine(obj, os.path.join(data_dir, "snapshot"))
            factory = TcpNetworkFactory(node_id, config, ssl=client_ssl)
            raft = await Raft.start(node_id, config, factory, log_store, sm)
            host, port = addrs[node_id]
            server = await serve_tcp(raft, host, port, ssl=server_ssl)
            m = raft.metrics
            if m.membership is None and m.last_log_index == 0:
                try:
                    await raft.initialize({i: Node(f"{h}:{p}") for i, (h, p) in addrs.items()}, elect=False)
                except InitializeError:
                    pass        # a leader reached this node first: the cluster exists already
        except BaseException:
            if raft is not None:
                await raft.shutdown(transfer=False)
            if server is not None:
                await server.close()
            if factory is not None:
                factory.close()
            await log_store.close()
            raise
        node = cls(obj, raft, server, factory, log_store, sm)
        obj.__dict__[_BINDING] = node
        return node

    # ---------------------------------------------------------------- calls from the object
    async def call_command(self, name: str, args, kwargs) -> Any:
        resp = await self.raft.client_write(pack_call(name, args, kwargs), forward=True)
        return unpack_result(resp.data)

    async def call_query(self, method: _Query, obj: ReplicatedObject, args, kwargs) -> Any:
        if not method.local:
            await self.raft.ensure_linearizable(ReadPolicy.LEASE_READ | ReadPolicy.READ_INDEX if method.lease
                                                else ReadPolicy.READ_INDEX)
        value = method.fn(obj, *args, **kwargs)
        try:
            packed = pack_result(value)         # a copy: the caller never holds the replica's state
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgumentType(f"query {method.name!r} returned a {type(value).__name__} msgpack cannot "
                                      f"pack: {exc}") from None
        return unpack_result(packed)

    # ---------------------------------------------------------------- stop
    async def close(self) -> None:
        """Stop serving: a leader first hands leadership over (while its listener still
        serves), then the node stops and its WAL is flushed and closed. The object goes back
        to plain Python."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.raft.shutdown(transfer=True)
        finally:
            await self._server.close()
            self._factory.close()
            await self._log_store.close()
            self.obj.__dict__.pop(_BINDING, None)
