"""Serving a mock on a real loopback socket, inside the caller's event loop.

Running uvicorn as a task in the current loop (not a thread) keeps the mock on the same
clock as its clients, so a scenario on virtual time sees consistent broker rules. The
socket is bound here, before uvicorn starts, so a taken port is reported as ``PortInUse``
with what to do, instead of a log line and an exit from inside uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mocks.wire import TRANSPORT_KEY


class PortInUse(OSError):
    """The port is taken; the message names it and says how to pick another."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} on {host} is already in use. Stop whatever holds it "
            f"(e.g. `ss -ltnp 'sport = :{port}'` shows the process) or choose another "
            f"port with --port (--port 0 picks a free one)",
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


class _WireAccessProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (its fastest parser), with the connection's transport
    exposed to the app."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        inner = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            extensions = scope.get("extensions")
            scope["extensions"] = {**(extensions or {}), TRANSPORT_KEY: transport}
            await inner(scope, receive, send)

        self.app = app


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
        # uvicorn wakes every 0.1 s to look at should_exit; on virtual time each wake-up is
        # a clock jump the whole loop pays for. Wait for stop() instead, waking once a
        # second (counted in tenths, as on_tick expects) to refresh the Date header.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)
            counter = (counter + 10) % 864000
            should_exit = await self.on_tick(counter)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class MockServer:
    """A running mock: ``url`` while inside ``serve()``."""

    def __init__(self, server: uvicorn.Server, url: str) -> None:
        self._server = server
        self.url = url


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp | Any, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[MockServer]:
    """Serve ``app`` until the block exits; raises PortInUse before anything starts."""
    sock = bind(host, port)
    config = uvicorn.Config(
        app,
        http=_WireAccessProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        # A mock is never behind a proxy; the middleware would only cost time per request.
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )
    server = _EmbeddedServer(config)
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
