"""A lean HTTP/1.1 server: an asyncio Protocol over httptools (the parser uvicorn uses), with
responses built as bytes. It knows nothing of the KV service: `KvServer` gives it a router.

Why not aiohttp's server: its per-request machinery (a Request object of many parts, a task,
middleware, a StreamResponse) cost the leader about 90 us of CPU per put, thirty times the
engine's own part. Here a request is parsed into a small `Request`, a handler answers it
either at once, later through its `Slot` (no task: the write path hangs on the write's
future), or as a coroutine (the rarer routes run as tasks).

Per connection, answers go out in request order (pipelining), those ready in one loop
iteration in one write. Limits: a request line plus headers of at most `max_header_bytes`
(431), a body of at most `max_body_bytes` (413, after reading and dropping it so the client
sees the answer), a whole request within `header_timeout` seconds of its first byte (408:
slowloris), an idle keep-alive connection closed after `keepalive_timeout`. A malformed
request gets a JSON 400 and its connection is closed; nothing a connection does touches
another. A periodic sweep enforces the timeouts, each slot's own deadline included.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from email.utils import formatdate
from typing import Any, Callable, Deque, Dict, List, Optional
from urllib.parse import parse_qsl, unquote

import httptools

from openraft_fast.kv.listener import Listener

_log = logging.getLogger("openraft_fast.kv")

JSON = "application/json; charset=utf-8"
_REASONS = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
# Pipelined requests a connection may have unanswered before we stop reading from it.
MAX_PENDING = 1024


class Response:
    """An answer: status, body bytes, content type, extra headers."""
    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str = JSON,
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


class StreamResponse:
    """An answer whose body is streamed (chunked) for as long as the handler wants: once its
    head is sent, `start(stream)` gets the connection's `Stream` to write to and end; `on_close`
    is called if the connection goes first. The connection serves nothing after it."""
    __slots__ = ("content_type", "headers", "start", "on_close")

    def __init__(self, content_type: str, start: Callable[["Stream"], None], on_close: Callable[[], None],
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.content_type = content_type
        self.start = start
        self.on_close = on_close
        self.headers = headers


class Stream:
    """The body of a StreamResponse on its connection: `write` a chunk, `buffered` bytes the
    client has not taken yet, `end` the body (and the connection)."""
    __slots__ = ("conn", "ended")

    def __init__(self, conn: "HttpConnection") -> None:
        self.conn = conn
        self.ended = False

    def write(self, data: bytes) -> None:
        t = self.conn.transport
        if data and not self.ended and t is not None and not t.is_closing():
            t.write(b"%x\r\n%b\r\n" % (len(data), data))

    def buffered(self) -> int:
        t = self.conn.transport
        return 0 if t is None else t.get_write_buffer_size()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            t = self.conn.transport
            if t is not None and not t.is_closing():
                t.write(b"0\r\n\r\n")
                t.close()


def json_response(obj: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(status, json.dumps(obj).encode(), JSON, headers)


def json_error(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


class Request:
    """One parsed request. `path` is percent-decoded; `raw_path` and `query_string` are as sent."""
    __slots__ = ("method", "raw_path", "path", "query_string", "headers", "body", "match_info", "_query")

    def __init__(self, method: str, raw_path: str, query_string: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.raw_path = raw_path
        self.path = unquote(raw_path) if "%" in raw_path else raw_path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.match_info: Dict[str, str] = {}
        self._query: Optional[Dict[str, str]] = None

    @property
    def query(self) -> Dict[str, str]:
        """The query parameters; a repeated one keeps its first value."""
        if self._query is None:
            q: Dict[str, str] = {}
            for k, v in parse_qsl(self.query_string, keep_blank_values=True):
                q.setdefault(k, v)
            self._query = q
        return self._query

    @property
    def path_qs(self) -> str:
        return self.raw_path + ("?" + self.query_string if self.query_string else "")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body)


class Slot:
    """The place of one request's answer in its connection's queue. A handler that answers
    later calls `answer(response)` (or `answer_json_200` with a prebuilt body) once; a slot
    given a `deadline` (monotonic) gets `on_timeout` from the sweep if nothing came by then."""
    __slots__ = ("conn", "data", "keep_alive", "route", "status", "deadline", "on_timeout", "stream")

    def __init__(self, conn: "HttpConnection", keep_alive: bool, route: str) -> None:
        self.conn = conn
        self.data: Optional[bytes] = None
        self.keep_alive = keep_alive
        self.route = route
        self.status = 0
        self.deadline = 0.0
        self.on_timeout: Optional[Response] = None
        self.stream: Optional[StreamResponse] = None

    def answer(self, resp) -> None:
        """`resp`: a Response, or a StreamResponse (the connection's last answer)."""
        if self.data is not None:
            return
        if type(resp) is StreamResponse:
            self.status = 200
            self.keep_alive = False
            self.stream = resp
            head = [f"HTTP/1.1 200 OK\r\nContent-Type: {resp.content_type}\r\nTransfer-Encoding: chunked\r\n"
                    f"Cache-Control: no-cache\r\nConnection: close\r\n"]
            if resp.headers:
                head.extend(f"{k}: {v}\r\n" for k, v in resp.headers.items())
            self.data = b"".join(("".join(head).encode("latin-1"), self.conn.server.date, b"\r\n"))
        else:
            self.status = resp.status
            self.data = _encode(resp, self.keep_alive, self.conn.server.date)
        self.conn.ready()

    def answer_json_200(self, body: bytes) -> None:
        if self.data is None:
            self.status = 200
            server = self.conn.server
            self.data = b"".join((server.head_200_json, str(len(body)).encode(), server.date_line,
                                  b"\r\n" if self.keep_alive else b"Connection: close\r\n\r\n", body))
            self.conn.ready()


def _encode(resp: Response, keep_alive: bool, date: bytes) -> bytes:
    head = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}\r\n"
            f"Content-Type: {resp.content_type}\r\nContent-Length: {len(resp.body)}\r\n"]
    if resp.headers:
        head.extend(f"{k}: {v}\r\n" for k, v in resp.headers.items())
    if not keep_alive:
        head.append("Connection: close\r\n")
    return b"".join((("".join(head)).encode("latin-1"), date, b"\r\n", resp.body))


# A router: (request, slot) -> a Response now, None when the slot will be answered later, or
# a coroutine that returns the Response (run as a task).
Router = Callable[[Request, Slot], Any]
# Called for every answer with (route, status), to count them.
Counter = Callable[[str, int], None]


class HttpConnection(asyncio.Protocol):
    __slots__ = ("server", "transport", "parser", "slots", "url", "headers", "body", "body_size", "header_bytes",
                 "too_large", "started", "idle_since", "flushing", "closing", "paused", "reading_paused", "stream")

    def __init__(self, server: "HttpServer") -> None:
        self.server = server
        self.transport: Optional[asyncio.Transport] = None
        self.parser = httptools.HttpRequestParser(self)
        self.slots: Deque[Slot] = deque()
        self.url = b""
        self.headers: Dict[str, str] = {}
        self.body: List[bytes] = []
        self.body_size = 0
        self.header_bytes = 0
        self.too_large = False
        self.started = 0.0          # when the request being received began (0: none)
        self.idle_since = time.monotonic()
        self.flushing = False
        self.closing = False
        self.paused = False         # the transport asked us to stop writing
        self.reading_paused = False
        self.stream: Optional[StreamResponse] = None    # streaming its last answer

    # ------------------------------------------------------------------ transport events
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        self.closing = True
        for slot in self.slots:                 # a stream answered but not yet started
            if slot.stream is not None:
                slot.stream.on_close()
        self.slots.clear()
        if self.stream is not None:
            stream, self.stream = self.stream, None
            stream.on_close()

    def pause_writing(self) -> None:
        self.paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self._maybe_resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.started:
            self.started = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(json_error(400, "bad_request", "protocol upgrades are not supported"))
        except _TooLarge as exc:
            self._fail(exc.response)
        except httptools.HttpParserError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, _TooLarge) else None
            self._fail(cause.response if cause is not None else
                       json_error(400, "bad_request", f"malformed HTTP request: {exc}"))

    def eof_received(self):
        return False

    # ------------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []
        self.body_size = 0
        self.header_bytes = 0
        self.too_large = False
        if not self.started:
            self.started = time.monotonic()

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.server.max_header_bytes:
            raise _TooLarge(self.server.headers_too_large())

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.server.max_header_bytes:
            raise _TooLarge(self.server.headers_too_large())
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.server.max_body_bytes:
            self.too_large = True
            if int(length) > 16 * self.server.max_body_bytes:
                raise _TooLarge(self.server.too_large())   # not worth reading to the end
        if not self.too_large and self.headers.get("expect", "").lower() == "100-continue" and not self.slots:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")     # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.server.max_body_bytes:
            self.too_large = True
            self.body = []          # read and dropped: the client then sees the answer
        if not self.too_large:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.started = 0.0
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        slot = Slot(self, keep_alive, "unmatched")
        self.slots.append(slot)
        if self.too_large:
            slot.answer(self.server.too_large())
        else:
            raw = self.url.decode("latin-1")
            path, _, query = raw.partition("?")
            path = path.partition("#")[0]
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            req = Request(parser.get_method().decode("latin-1"), path, query, self.headers, body)
            self.server.dispatch(req, slot)
        if not keep_alive:
            self._pause_reading()       # nothing more is read from a connection that ends here
            self.closing = True
        elif len(self.slots) >= MAX_PENDING:
            self._pause_reading()

    # ------------------------------------------------------------------ answers
    def ready(self) -> None:
        if not self.flushing and self.transport is not None:
            self.flushing = True
            self.server.ready(self)

    def flush(self) -> None:
        self.flushing = False
        slots = self.slots
        if self.transport is None or self.transport.is_closing():
            return
        out: List[bytes] = []
        close = False
        stream = None
        count = self.server.count
        while slots and slots[0].data is not None:
            s = slots.popleft()
            out.append(s.data)              # type: ignore[arg-type]
            count(s.route, s.status)
            if not s.keep_alive:
                close = True
                stream = s.stream
                slots.clear()
                break
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if stream is not None:
            # Nothing more is read: requests after it would land inside the stream's body.
            self.closing = True
            self._pause_reading()
            self.stream = stream
            stream.start(Stream(self))
            return
        if close:
            self.transport.close()
            return
        if not slots:
            self.idle_since = time.monotonic()
        self._maybe_resume_reading()

    def _fail(self, resp: Response) -> None:
        """Answer `resp` after the answers already owed, then close: the byte stream cannot be
        trusted past a request we could not parse."""
        self.closing = True
        self._pause_reading()
        slot = Slot(self, False, "unmatched")
        self.slots.append(slot)
        slot.answer(resp)

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if self.reading_paused and not self.closing and not self.paused and len(self.slots) < MAX_PENDING // 2:
            self.reading_paused = False
            self.transport.resume_reading()     # type: ignore[union-attr]

    def sweep(self, now: float) -> None:
        if self.stream is not None:
            return                          # a stream lasts as long as its handler wants
        server = self.server
        for slot in self.slots:
            if slot.data is None and slot.on_timeout is not None and slot.deadline <= now:
                slot.answer(slot.on_timeout)
        if self.started and now - self.started > server.header_timeout and not self.slots:
            # Slow headers (slowloris) or a body that never ends.
            self._fail(json_error(408, "request_timeout", f"the request did not arrive within "
                                                          f"{server.header_timeout:g}s"))
        elif not self.started and not self.slots and now - self.idle_since > server.keepalive_timeout:
            self.transport.close()      # type: ignore[union-attr]


class _TooLarge(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class HttpServer(Listener):
    """Serves `router` on host:port. `count(route, status)` sees every answer."""

    def __init__(self, router: Router, count: Counter, *, max_body_bytes: int, too_large: Callable[[], Response],
                 max_header_bytes: int = 16384, header_timeout: float = 10.0, keepalive_timeout: float = 75.0,
                 sweep_interval: float = 1.0) -> None:
        super().__init__()
        self.router = router
        self.count = count
        self.max_body_bytes = max_body_bytes
        self.too_large = too_large
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self.sweep_interval = sweep_interval
        self.head_200_json = (f"HTTP/1.1 200 OK\r\nContent-Type: {JSON}\r\nContent-Length: ").encode()
        self.date = b""
        self.date_line = b""
        self._set_date()
        self._ready: List[HttpConnection] = []

    def _set_date(self) -> None:
        self.date = f"Date: {formatdate(usegmt=True)}\r\n".encode()
        self.date_line = b"\r\n" + self.date

    async def start(self, host: str, port: int, ssl=None) -> int:
        return await self.listen(lambda: HttpConnection(self), host, port, ssl)

    # ------------------------------------------------------------------ requests
    def dispatch(self, req: Request, slot: Slot) -> None:
        try:
            out = self.router(req, slot)
        except Exception as exc:        # a router bug answers this request only
            _log.exception("%s %s failed", req.method, req.path)
            out = json_error(500, "internal", f"internal error: {exc!r}")
        if out is None:
            return
        if isinstance(out, (Response, StreamResponse)):
            slot.answer(out)
            return
        self.spawn(out).add_done_callback(lambda t: self._task_done(t, slot))

    def _task_done(self, task: asyncio.Task, slot: Slot) -> None:
        if task.cancelled():
            slot.answer(json_error(503, "stopped", "the server is stopping"))
            return
        exc = task.exception()
        if exc is not None:
            slot.answer(json_error(500, "internal", f"internal error: {exc!r}"))
        else:
            slot.answer(task.result())

    def ready(self, conn: HttpConnection) -> None:
        """`conn` has answers to send: every such connection is flushed once, at the end of
        this loop iteration (the answers of one burst in one write each)."""
        if not self._ready:
            self.loop.call_soon(self._flush_ready)
        self._ready.append(conn)

    def _flush_ready(self) -> None:
        ready, self._ready = self._ready, []
        for conn in ready:
            conn.flush()

    def headers_too_large(self) -> Response:
        return json_error(431, "headers_too_large", f"the request line and headers are over "
                                                    f"{self.max_header_bytes} bytes")

    def sweep(self) -> None:
        self._set_date()
        now = time.monotonic()
        for conn in list(self.connections):
            conn.sweep(now)
