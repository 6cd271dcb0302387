"""Listener: what both client-facing servers of the KV service share (kv/http.py's HTTP server
and kv/binary.py's binary protocol): a TCP listener that tracks its connections, runs a
periodic sweep (timeouts), owns the tasks its requests start, and on close drops them all."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, Optional


class Listener:
    sweep_interval = 1.0

    def __init__(self) -> None:
        self.connections: set = set()
        self.loop = asyncio.get_event_loop()
        self._server: Optional[asyncio.AbstractServer] = None
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self._tasks: set = set()

    async def listen(self, protocol: Callable[[], asyncio.BaseProtocol], host: str, port: int, ssl=None) -> int:
        """Serve `protocol` on host:port (0: any free port); returns the port."""
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(protocol, host, port, ssl=ssl, reuse_address=True, backlog=1024)
        self._sweeper = self.loop.call_later(self.sweep_interval, self._tick)
        return self._server.sockets[0].getsockname()[1]

    def _tick(self) -> None:
        self._sweeper = self.loop.call_later(self.sweep_interval, self._tick)
        self.sweep()

    def sweep(self) -> None:
        """Called every sweep_interval seconds."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """A task for a request; cancelled by close()."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def drop(self, conn: Any) -> None:
        """Close one connection (close() calls it for each)."""
        raise NotImplementedError

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                self.drop(conn)
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
