"""The feed client's one seam to the network: open a connection, send and receive text.

``FeedClient`` only ever sees a ``Connection``, obtained from a ``Connect`` callable; the
real one (``connect_websocket``) wraps a websockets client connection, and unit tests pass
an in-memory one instead (httpx's "transports as the seam for tests"). Whatever breaks
underneath surfaces as ``FeedUnavailable`` (``FeedConnectionClosed`` once open).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from system.market.errors import FeedConnectionClosed, FeedUnavailable


class Connection(Protocol):
    """One open connection to the realtime server."""

    async def send(self, text: str) -> None:
        """Send one text message; ``FeedConnectionClosed`` if the connection is gone."""

    async def recv(self) -> str:
        """The next text message; ``FeedConnectionClosed`` when the connection ends."""

    async def close(self) -> None:
        """Close the connection (idempotent; never raises)."""


Connect = Callable[[str], Awaitable[Connection]]

# What the realtime server can make the client hold, stated rather than left to the
# library: a message of at most 1 MiB (a 999-record KIS frame is 220 to 290 KiB; a longer one
# closes the connection with 1009, and the client reconnects), and at most 16 messages
# read ahead of the client before websockets stops reading the socket.
MAX_MESSAGE_BYTES = 1 << 20
MAX_QUEUED_MESSAGES = 16


class WebSocketConnection:
    """A ``Connection`` over a websockets client connection."""

    def __init__(self, socket: ClientConnection, url: str) -> None:
        self._socket = socket
        self._url = url

    async def send(self, text: str) -> None:
        try:
            await self._socket.send(text)
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc

    async def recv(self) -> str:
        try:
            message = await self._socket.recv()
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc
        # KIS sends text only; a binary message is decoded so the parser can reject it.
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def close(self) -> None:
        await self._socket.close()

    def _closed(self, exc: ConnectionClosed) -> FeedConnectionClosed:
        frame = exc.rcvd
        if frame is None:
            how = "the connection to the realtime server dropped without a close frame"
            return FeedConnectionClosed(f"{how} ({self._url})")
        reason = f" {frame.reason!r}" if frame.reason else ""
        return FeedConnectionClosed(
            f"the realtime server closed the connection with code {frame.code}{reason} "
            f"({self._url})",
            code=frame.code,
            reason=frame.reason,
        )


async def connect_websocket(url: str, *, close_timeout_s: float = 10.0) -> Connection:
    """Open a WebSocket to ``url``; ``FeedUnavailable`` says why not.

    The caller bounds the time this may take. WebSocket pings are off, as in KIS's own
    sample client: KIS keeps the connection alive with its PINGPONG messages, and the feed
    client's stall detection covers a connection that goes quiet.
    """
    try:
        socket = await connect(
            url,
            open_timeout=None,
            ping_interval=None,
            close_timeout=close_timeout_s,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=MAX_QUEUED_MESSAGES,
        )
    except InvalidURI as exc:
        raise FeedUnavailable(f"{url} is not a WebSocket URL ({exc}); fix the feed url") from exc
    except InvalidHandshake as exc:
        raise FeedUnavailable(
            f"the realtime server at {url} refused the WebSocket handshake ({exc}); check "
            "the url's host, port and path (KIS: /tryitout)"
        ) from exc
    except OSError as exc:
        raise FeedUnavailable(
            f"could not connect to the realtime server at {url} ({type(exc).__name__}: {exc})"
        ) from exc
    return WebSocketConnection(socket, url)
