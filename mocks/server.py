"""Serving a mock on a real loopback socket, inside the caller's event loop.

Running uvicorn as a task in the current loop (not a thread) keeps the mock on the same
clock as its clients, so a scenario on virtual time sees consistent broker rules. The
socket is bound here, before uvicorn starts, so a taken port is reported as ``PortInUse``
with what to do, instead of a log line and an exit from inside uvicorn.

Faults below the application need more than ASGI offers, so every connection's ASGI scope
carries two extensions: its TCP transport (``mocks.wire``: reset, close, pause reading) and
the server's ``Listener`` (a restart: stop listening, cut every connection, listen again).

Every mock served here has the bounds of ``mocks.limits``: request bodies (413), request
heads (431) and WebSocket messages (1009). Messages waiting for the app need no bound of
their own: uvicorn's WebSocket protocol stops reading a connection after each message until
the app has taken it (its ``ws_max_queue`` applies only to the legacy protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from mocks.limits import MAX_BODY_BYTES, MAX_WS_MESSAGE_BYTES, BodyLimit, HeadLimitedHttp
from mocks.wire import TRANSPORT_KEY, WireUnavailable

LISTENER_KEY = "squall.listener"


class PortInUse(OSError):
    """The port is taken; the message names it and says how to pick another (with
    ``option``, the command-line option that sets this port)."""

    def __init__(self, host: str, port: int, option: str = "--port") -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} on {host} is already in use. Stop whatever holds it "
            f"(e.g. `ss -ltnp 'sport = :{port}'` shows the process) or choose another "
            f"port with {option} ({option} 0 picks a free one)",
        )
        self.host = host
        self.port = port


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and accepted sockets inherit proto 0 otherwise. Without NODELAY, uvicorn's
    # separate header and body writes meet the client's delayed ACK: 40 ms per exchange.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise
    sock.set_inheritable(True)
    return sock


class Listener:
    """The listening side of a served mock, for the fault that takes the whole server down."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: _EmbeddedServer | None = None
        self.down = False

    def _attach(self, server: _EmbeddedServer) -> None:
        self._server = server

    async def outage(self, seconds: float) -> None:
        """Stop listening, cut every open connection (without a WebSocket close frame or an
        HTTP answer, as when a process dies), refuse connections for ``seconds``, then
        listen again on the same port. Raises PortInUse if another process took the port
        meanwhile (the mock stays down then, as a restarted real server would)."""
        server = self._server
        if server is None or self.down:
            return
        self.down = True
        try:
            for listening in server.servers:
                listening.close()
            for connection in list(server.server_state.connections):
                if not connection.transport.is_closing():
                    connection.transport.abort()
            await asyncio.sleep(seconds)
            if server.should_exit:
                return
            sock = bind(self.host, self.port)
            config = server.config

            def create_protocol() -> asyncio.Protocol:
                # What uvicorn's own startup builds for every accepted connection.
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config,
                    server_state=server.server_state,
                    app_state=server.lifespan.state,
                )

            loop = asyncio.get_running_loop()
            server.servers.append(
                await loop.create_server(create_protocol, sock=sock, backlog=config.backlog)
            )
        finally:
            self.down = False


def listener_of(scope: Scope) -> Listener:
    listener = (scope.get("extensions") or {}).get(LISTENER_KEY)
    if not isinstance(listener, Listener):
        raise WireUnavailable(
            "this fault restarts the server, but the connection did not come through one; "
            "serve the mock with mocks.server (squall mock feed) to use it"
        )
    return listener


class _MockConfig(uvicorn.Config):
    """uvicorn's settings plus the listener the protocols hand to the app."""

    def __init__(self, app: ASGIApp | Any, listener: Listener, **settings: Any) -> None:
        super().__init__(app, **settings)
        self.listener = listener
        self.date_second: int | None = None  # the second of the Date header in use

    def refresh_date(self, state: ServerState) -> None:
        """Bring the Date header (and the configured headers after it) up to the current
        second of real time, as uvicorn's once-a-second tick does, but on demand: the first
        request of each second pays for it, and an idle server never wakes."""
        now = time.time()
        second = int(now)
        if second != self.date_second:
            self.date_second = second
            date = [(b"date", formatdate(now, usegmt=True).encode())] if self.date_header else []
            state.default_headers = date + self.encoded_headers


def _with_wire(app: ASGIApp, transport: asyncio.Transport, config: uvicorn.Config) -> ASGIApp:
    """``app`` with the connection's transport and the server's listener in every scope."""
    extra: dict[str, object] = {TRANSPORT_KEY: transport}
    if isinstance(config, _MockConfig):
        extra[LISTENER_KEY] = config.listener

    async def wired(scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions")
        scope["extensions"] = {**(extensions or {}), **extra}
        await app(scope, receive, send)

    return wired


class _WireAccessProtocol(HeadLimitedHttp):
    """uvicorn's httptools protocol (its fastest parser), with the connection's transport
    exposed to the app and request heads bounded (``mocks.limits``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _with_wire(self.app, transport, self.config)

    def on_headers_complete(self) -> None:
        # Before uvicorn hands the default headers to the request (and to a WebSocket
        # upgrade, which copies them).
        if isinstance(self.config, _MockConfig):
            self.config.refresh_date(self.server_state)
        super().on_headers_complete()


class _WireAccessWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol on the websockets library (sans-I/O), likewise.

    An upgraded connection keeps its transport: the HTTP protocol hands it over."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.app = _with_wire(self.app, self.transport, self.config)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves Ctrl-C to the process embedding it.

    Several mocks share one process and loop; the embedding program decides how to stop
    them all, so no server may install its own signal handlers.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._stop.set()

    async def main_loop(self) -> None:
        # uvicorn wakes every 0.1 s to look at should_exit and, once a second, to refresh
        # the Date header; on virtual time each wake-up is a clock jump the whole loop pays
        # for (a day-long scenario spent a tenth of its time on them). Wait for stop()
        # instead: requests refresh the Date header themselves (_MockConfig.refresh_date).
        await self._stop.wait()
        await self.on_tick(0)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class MockServer:
    """A running mock: ``url`` while inside ``serve()``; ``ws_url`` is the same origin in
    the WebSocket scheme (``ws://host:port``)."""

    def __init__(self, server: uvicorn.Server, url: str) -> None:
        self._server = server
        self.url = url
        self.ws_url = "ws" + url.removeprefix("http")

    @property
    def listener(self) -> Listener:
        """The listening side, for a fault that takes the whole server down (``outage``)."""
        config = self._server.config
        assert isinstance(config, _MockConfig)  # serve() always makes one
        return config.listener


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp | Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ws_ping_interval: float | None = 20.0,
    max_body_bytes: int | None = MAX_BODY_BYTES,
) -> AsyncIterator[MockServer]:
    """Serve ``app`` until the block exits; raises PortInUse before anything starts.

    ``ws_ping_interval`` is uvicorn's own WebSocket-level keepalive; None turns it off (the
    feed does: KIS keeps connections alive with its application-level PINGPONG).
    ``max_body_bytes`` bounds request bodies (413 beyond, ``mocks.limits.BodyLimit``);
    None leaves them to an app that bounds, and journals, its own.
    """
    sock = bind(host, port)
    listener = Listener(*sock.getsockname()[:2])
    config = _MockConfig(
        # Outermost, around the app's own middleware: a fault injector or a journal never
        # holds a body the mock would refuse.
        app if max_body_bytes is None else BodyLimit(app, max_body_bytes),
        listener,
        http=_WireAccessProtocol,
        ws=_WireAccessWebSocketProtocol,
        ws_ping_interval=ws_ping_interval,
        ws_max_size=MAX_WS_MESSAGE_BYTES,
        lifespan="on",
        log_level="warning",
        access_log=False,
        # A mock is never behind a proxy; the middleware would only cost time per request.
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )
    server = _EmbeddedServer(config)
    listener._attach(server)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surface the start-up error
                raise RuntimeError("the mock server stopped during start-up")
            await asyncio.sleep(0.005)
        yield MockServer(server, _url(sock))
    finally:
        server.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
