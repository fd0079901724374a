"""Serving the gateway with uvicorn, as a task of the caller's event loop.

``mocks.server`` does the same for the mocks, but the system never imports mocks (the
dependency rule in DESIGN.md: production code must not depend on the simulated world), so
the few lines that matter are written again here:

- The socket is bound before uvicorn starts, so a taken port raises ``PortInUse`` naming
  the port and what to do — not a log line and ``sys.exit`` from inside uvicorn.
- uvicorn runs in the current loop (not a thread): the gateway then keeps the loop's clock,
  virtual under looptime, like everything else in the system.
- The WebSocket settings follow the gateway's own policies: no protocol-level pings (the
  JSON heartbeat of ``HeartbeatManager`` is the one keepalive), no per-message compression
  (it would be paid per client for every broadcast), and a transport the gateway can abort
  when a client that never reads cannot take a close frame.
- What a client can make the server hold is bounded by the gateway's settings: a WebSocket
  message by ``max_frame_bytes`` (1009 beyond it), a request head by ``max_header_bytes``
  (431, ``system.gateway.limits``). Messages waiting for the app need no bound of their
  own: uvicorn's WebSocket protocol stops reading a connection after each message until
  the app has taken it (its ``ws_max_queue`` applies only to the legacy protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from system.gateway.limits import head_limited
from system.gateway.settings import GatewaySettings

# The scope extension through which the /ws route can abort its connection.
ABORT_KEY = "squall.abort"


class PortInUse(OSError):
    """The port is taken; the message names it and how to choose another."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} on {host} is already in use, so the gateway cannot listen there. "
            f"Stop whatever holds it (`ss -ltnp 'sport = :{port}'` shows the process) or "
            "choose another port with --port (--port 0 picks a free one)",
        )
        self.host = host
        self.port = port


def bind(host: str, port: int, *, send_buffer_bytes: int | None = None) -> socket.socket:
    """A TCP socket bound to (host, port), ready for uvicorn; port 0 picks a free one.

    ``send_buffer_bytes`` sets SO_SNDBUF here, on the listening socket: accepted client
    connections inherit it (Linux), and setting it later would not shrink a window in use.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP; without it every small WebSocket message may wait for a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise
    return sock


class _AbortableWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, offering the app a way to abort the connection.

    uvicorn sends a close frame only once the transport is writable again, so closing a
    client that stopped reading would wait forever; aborting is the way out.
    """

    async def run_asgi(self) -> None:
        extensions = self.scope.setdefault("extensions", {})
        if extensions is not None:
            extensions[ABORT_KEY] = {"abort": self.transport.abort}
        await super().run_asgi()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (the embedding program owns Ctrl-C) and without
    its 0.1 s polling loop (on virtual time every wake-up is a clock jump)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()

    async def main_loop(self) -> None:
        # on_tick counts tenths of a second; it refreshes the Date header every 10.
        ticks = 0
        while not await self.on_tick(ticks):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)
            ticks = (ticks + 10) % 864000


class GatewayServer:
    """A running gateway: its ``url`` (``http://127.0.0.1:PORT``), ``host`` and ``port``."""

    def __init__(self, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_frame_bytes: int | None = None,
    send_buffer_bytes: int | None = None,
) -> AsyncIterator[GatewayServer]:
    """Serve ``app`` (``create_gateway(...)``) on host:port until the block exits.

    Raises ``PortInUse`` before anything starts when the port is taken. The app's lifespan
    (heartbeats, feed sync, REST fallback) runs inside; leaving the block closes every
    client and stops the server. ``max_frame_bytes`` and ``send_buffer_bytes`` default to
    the gateway's own settings (``GatewaySettings``), as does the limit on request heads,
    so settings read from the environment apply without the caller passing them on.
    """
    settings = _settings_of(app)
    if send_buffer_bytes is None:
        send_buffer_bytes = settings.send_buffer_bytes
    if max_frame_bytes is None:
        max_frame_bytes = settings.max_frame_bytes
    sock = bind(host, port, send_buffer_bytes=send_buffer_bytes)
    config = uvicorn.Config(
        app,
        http=head_limited(settings.max_header_bytes),
        ws=_AbortableWebSocket,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        ws_max_size=max_frame_bytes,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _EmbeddedServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # the start-up error, e.g. a failing lifespan
                raise RuntimeError(
                    "the gateway stopped during start-up; uvicorn's log above says why"
                )
            await asyncio.sleep(0.005)
        yield GatewayServer(sock)
    finally:
        server.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def _settings_of(app: ASGIApp) -> GatewaySettings:
    """The settings of a gateway app; the defaults for any other app."""
    # Imported here: the gateway's app module imports this one (for ABORT_KEY).
    from system.gateway.app import Gateway

    if not isinstance(app, FastAPI):
        return GatewaySettings()
    try:
        return Gateway.of(app).settings
    except LookupError:
        return GatewaySettings()
