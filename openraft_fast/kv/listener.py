"""What both client-facing servers of the KV service share (kv/http.py's HTTP server and
kv/binary.py's binary protocol): `Listener`, a TCP listener that tracks its connections, runs a
periodic sweep (timeouts), owns the tasks its requests start, and on close drops them all; and
`WriteSink`, the base of the objects their writes resolve (Raft.client_write_into)."""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
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

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                if conn.transport is not None:      # both protocols keep theirs there
                    conn.transport.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()


class WriteSink(ABC):
    """What a server hands Raft.client_write_into instead of a future: answered once, by
    `ok(data)` with the state machine's answer or by `fail(exc)`; never raises into the node's
    apply callback (an error in `ok` becomes `fail`)."""
    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = False

    def done(self) -> bool:
        return self.answered

    def set_result(self, resp) -> None:
        if not self.answered:
            self.answered = True
            try:
                self.ok(resp.data)
            except Exception as exc:
                self.fail(exc)

    def set_exception(self, exc: BaseException) -> None:
        if not self.answered:
            self.answered = True
            self.fail(exc)

    @abstractmethod
    def ok(self, data: Any) -> None:
        """Answer the applied write (each server in its own protocol)."""

    @abstractmethod
    def fail(self, exc: BaseException) -> None:
        """Answer the write's error."""
