"""The broker client's HTTP transport: httpx's, over a connection pool of our own on asyncio.

Why not httpcore's pool: per request it takes several anyio locks and cancel scopes (each
asking sniffio and ``asyncio.current_task`` which library runs it), scans every pooled
connection twice, and parses HTTP/1.1 with h11 in pure Python. On loopback that was the
largest single cost of a scenario's broker request (py-spy on the EGW00133 storm: ~21% of the
run). With this pool a loopback exchange went from ~0.34 ms to ~0.15 ms, and the storm's
time compression from ~222x to ~350x. ``BrokerPool`` does what the broker needs and no more:

- HTTP/1.1 over asyncio's transports and protocols, one request per connection at a time,
  the answer parsed by httptools (llhttp, which uvicorn parses requests with); no HEAD
  requests (their answers' lengths describe a body that never comes), no HTTP/2, no proxies;
- an informational (1xx) answer before the answer is passed over;
- keep-alive connections per origin, at most ``max_connections`` open, at most
  ``max_keepalive_connections`` idle, each idle one closed after ``keepalive_expiry``; one
  the server has closed is never reused, because the protocol saw its EOF the moment the
  loop delivered it;
- TLS through ``loop.create_connection``;
- httpx's timeouts: ``connect``, ``write``, ``read`` (the longest wait for the next bytes of
  the answer) and ``pool`` (the wait for a free connection);
- each answer read whole before it is returned (a broker's are a few KB), at most
  ``MAX_BODY_BYTES``.

``BrokerTransport`` is httpx's own ``AsyncHTTPTransport`` with this pool in place of
httpcore's, so requests, responses and the mapping of errors to httpx's exceptions stay
httpx's: callers see ``httpx.ConnectError``, ``httpx.ReadTimeout``, … as before. The pool
speaks httpcore's interface (``httpcore.Request`` in, ``httpcore.Response`` out, httpcore's
exceptions), which is also what lets respx mock it (``HTTPCoreMocker.add_targets``).

Errors, by what a caller may conclude:

- ``ConnectError``/``ConnectTimeout``/``PoolTimeout``: nothing was sent;
- ``WriteError``/``WriteTimeout``: the request may be partly sent;
- ``ReadTimeout``: no bytes of the answer for ``read`` seconds;
- ``ReadError``: the connection broke (a reset) while the answer was awaited;
- ``RemoteProtocolError``: the server hung up before answering completely, or answered
  something that is not HTTP/1.1, or more than ``MAX_BODY_BYTES``.
"""

# A pool takes a `timeout` mapping, as httpcore's does; asyncio.timeout honours it.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterable
from typing import Any, cast

import httpcore
import httptools
import httpx

# An answer larger than this is refused rather than held in memory: the broker's are a few
# KB, so only a misbehaving peer reaches it.
MAX_BODY_BYTES = 16 * 1024 * 1024

Origin = tuple[bytes, bytes, int]  # scheme, host, port
_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class _Answer:
    """One response as httptools parses it (its callbacks are these methods)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.keep_alive = False
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.begun = False  # a byte of it has arrived (llhttp begins a message on its first)
        self.extra = False  # a second message followed it in the same bytes
        self.too_large = False
        self.informational = False  # a 1xx came first; the answer follows it
        self.headers_done = False
        self.complete = False
        self.error: httpcore.NetworkError | httpcore.ProtocolError | None = None

    # Once a second message begins, the callbacks are about it: ignored, and the connection
    # is retired (``_Connection.stray``).

    def on_message_begin(self) -> None:
        self.extra = self.begun
        self.begun = True

    def on_status(self, status: bytes) -> None:
        if not self.extra:
            self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.extra:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.extra:
            return
        # Asked now: once the message is complete the parser has moved on to the next.
        self.status = self.parser.get_status_code()
        if self.status < 200:
            self.informational = True
            self.headers.clear()
            self.reason = b""
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        # Not raised here: httptools would report it as a parser error.
        if self.extra:
            return
        if len(self.body) + len(body) > MAX_BODY_BYTES:
            self.too_large = True
        else:
            self.body += body

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = self.begun = False
        elif not self.extra:
            self.complete = True

    def ends_at_eof(self) -> bool:
        """The answer gave neither a length nor chunks: its body runs until the server closes."""
        framing = {name.lower() for name, _ in self.headers}
        return b"content-length" not in framing and b"transfer-encoding" not in framing


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: the loop delivers its bytes here, ``exchange`` waits on them."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.ended = False  # the peer sent EOF or the connection is gone
        self.error: Exception | None = None
        self.stray = False  # bytes arrived with no request outstanding: never reuse it
        self.idle_since = 0.0
        self._answer: _Answer | None = None
        self._arrived: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._writable: asyncio.Future[None] | None = None

    # The loop's side.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.complete:
            self.stray = True
            return
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if answer.complete:  # what followed the answer is not for anyone: retire
                self.stray = True
            else:
                answer.error = httpcore.RemoteProtocolError(f"not an HTTP/1.1 answer: {exc}")
        if answer.too_large:
            answer.error = httpcore.RemoteProtocolError(
                f"the answer's body passed {MAX_BODY_BYTES} bytes; a broker's are a few KB"
            )
        if answer.extra:
            self.stray = True
        _settle(self._arrived)

    def eof_received(self) -> bool:
        self.ended = True
        _settle(self._arrived)
        return False  # HTTP/1.1 has no use for a half-open connection: let it close

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        _settle(self._arrived)
        _settle(self._writable)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        _settle(self._writable)

    # The request's side.

    def reusable(self, now: float, expiry: float | None) -> bool:
        return (
            not self.ended
            and not self.stray
            and self.transport is not None
            and not self.transport.is_closing()
            and (expiry is None or now - self.idle_since < expiry)
        )

    async def exchange(
        self, head: bytes, body: bytes, timeouts: dict[str, float | None]
    ) -> _Answer:
        """Send one request and read its whole answer."""
        transport = self.transport
        assert transport is not None
        answer = self._answer = _Answer()
        if self.ended or transport.is_closing():
            raise httpcore.WriteError(f"the connection is closed ({self.error or 'EOF'})")
        transport.write(head + body)
        await self._drained(timeouts.get("write"))
        read_timeout = timeouts.get("read")
        while not answer.complete:
            if answer.error is not None:
                raise answer.error
            if self.ended:
                self._ended_early(answer)
                break
            self._arrived = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(read_timeout):
                    await self._arrived
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(f"no answer within {read_timeout} s") from exc
            finally:
                self._arrived = None
        if answer.error is not None:
            raise answer.error
        return answer

    def keep_alive(self) -> bool:
        answer = self._answer
        return answer is not None and answer.complete and answer.keep_alive and not self.ended

    def _ended_early(self, answer: _Answer) -> None:
        """The connection ended before the answer did: complete it if its body runs to the
        end of the stream, else raise what went wrong."""
        if isinstance(self.error, OSError):
            raise httpcore.ReadError(str(self.error)) from self.error
        if answer.headers_done and answer.ends_at_eof():
            answer.complete = True
            answer.keep_alive = False
            return
        if not answer.begun:
            raise httpcore.RemoteProtocolError("Server disconnected without sending a response.")
        raise httpcore.RemoteProtocolError(
            "the server closed the connection in the middle of its answer"
        )

    async def _drained(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self._paused_writing and not self.ended:
                    self._writable = asyncio.get_running_loop().create_future()
                    try:
                        await self._writable
                    finally:
                        self._writable = None
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(f"the peer took no data within {timeout} s") from exc
        if self.ended and isinstance(self.error, OSError):
            raise httpcore.WriteError(str(self.error)) from self.error

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def get_extra_info(self, info: str) -> Any:
        """As httpcore's network streams answer it (``network_stream`` in a response's
        extensions is this connection)."""
        if self.transport is None:
            return None
        if info == "client_addr":
            return self.transport.get_extra_info("sockname")
        if info == "server_addr":
            return self.transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self.transport.get_extra_info(info)
        return None


def _settle(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _request_head(request: httpcore.Request) -> bytes:
    lines = [request.method + b" " + request.url.target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _request_body(request: httpcore.Request) -> bytes:
    # httpx hands the pool its request stream, which is async-iterable (a broker's are bytes
    # already in memory).
    return b"".join([chunk async for chunk in cast(AsyncIterable[bytes], request.stream)])


class BrokerPool:
    """Keep-alive HTTP/1.1 connections, in httpcore's pool interface; see the module
    docstring."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        max_connections: int | None = 100,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_connections = max_connections
        self._max_idle = max_keepalive_connections
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if self._closed:
            raise RuntimeError("the broker's connection pool is closed")
        scheme = request.url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpcore.UnsupportedProtocol(f"{scheme!r} is not http or https")
        port = request.url.port or _DEFAULT_PORTS[scheme]
        origin = (scheme, request.url.host, port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head, body = _request_head(request), await _request_body(request)
        connection = await self._acquire(origin, timeouts)
        try:
            answer = await connection.exchange(head, body, timeouts)
        except BaseException:
            self._release(connection, reuse=False)
            raise
        self._release(connection, reuse=connection.keep_alive())
        return httpcore.Response(
            status=answer.status,
            headers=answer.headers,
            content=bytes(answer.body),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": answer.reason,
                "network_stream": connection,
            },
        )

    async def _acquire(self, origin: Origin, timeouts: dict[str, float | None]) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            idle = self._idle.get(origin)
            while idle:
                connection = idle.pop()  # the most recently used: the least likely expired
                if connection.reusable(loop.time(), self._expiry):
                    return connection
                self._discard(connection)
            if self._max_connections is None or self._open < self._max_connections:
                self._open += 1
                try:
                    return await self._connect(origin, timeouts.get("connect"))
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            if self._idle_elsewhere():
                continue  # an idle connection to another origin was closed to make room
            waiter = loop.create_future()
            self._waiters.append(waiter)
            pool_timeout = timeouts.get("pool")
            try:
                async with asyncio.timeout(pool_timeout):
                    await waiter
            except TimeoutError as exc:
                raise httpcore.PoolTimeout(
                    f"no free connection within {pool_timeout} s ({self._max_connections} in use)"
                ) from exc
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken just as it was cancelled: pass the turn on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _idle_elsewhere(self) -> bool:
        for connections in self._idle.values():
            if connections:
                self._discard(connections.pop(0))
                return True
        return False

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        secure = scheme == b"https"
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin),
                    hostname,
                    port,
                    ssl=self._ssl_context if secure else None,
                    server_hostname=hostname if secure else None,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(
                f"no connection to {hostname}:{port} within {timeout} s"
            ) from exc
        except OSError as exc:  # ssl.SSLError included
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    def _release(self, connection: _Connection, *, reuse: bool) -> None:
        if reuse and not self._closed:
            idle = self._idle.setdefault(connection.origin, [])
            if self._max_idle is None or len(idle) < self._max_idle:
                connection.idle_since = asyncio.get_running_loop().time()
                idle.append(connection)
                self._wake_one()
                return
        self._discard(connection)
        self._wake_one()

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                self._discard(connection)
        self._idle.clear()

    async def __aenter__(self) -> BrokerPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class BrokerTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` whose pool is `BrokerPool`."""

    def __init__(self, verify: ssl.SSLContext, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, limits=limits)
        # httpx 0.28 takes no pool of one's own (encode/httpx#3749 proposes a network
        # backend), so the one it built is swapped for ours;
        # tests/unit/broker/test_transport.py fails if this stops taking effect.
        self._pool = cast(
            httpcore.AsyncConnectionPool,
            BrokerPool(
                verify,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
            ),
        )
