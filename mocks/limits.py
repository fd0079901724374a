"""What one client can make a mock hold: a request body, a request head, a WebSocket
message. ``mocks.server.serve`` applies all three to every mock it serves (the broker, the
feed, the proxy's control plane, each control plane under ``/_squall``).

- ``BodyLimit`` (ASGI middleware, ``MAX_BODY_BYTES``): Starlette reads a body whole
  (``request.body()``, ``request.json()``) with no limit of its own. A declared
  Content-Length over the limit is answered **413** before a byte of the body is read; a
  chunked body is counted as it is read and answered **413** once it passes the limit. The
  rest of such a body is read and dropped by uvicorn, never held. (Recent Starlette has
  ``RequestBodyLimitMiddleware``, but it answers a bare "Content Too Large", and the
  project supports older releases.)
- ``HeadLimitedHttp`` (uvicorn protocol, ``MAX_HEAD_BYTES``): httptools (llhttp) has no
  limit on a request's head; a head past the limit is answered **431** and the connection
  closed. WebSocket handshakes are HTTP requests first, so they are bounded too.
- ``MAX_WS_MESSAGE_BYTES``: uvicorn's ``ws_max_size``; a longer message closes its
  connection with 1009, before the app reads it. Below it, the feed answers a message over
  ``FeedConfig.max_message_chars`` with an error and keeps the connection.

Errors are ``{"detail": ...}``, as FastAPI's own and the control planes' are.

``system.gateway.limits`` holds the same two pieces for the system's gateway: the
dependency rule (DESIGN.md) forbids sharing code between ``mocks`` and ``system``, and each
is a few lines.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A mock's requests are small: a KIS order is a few hundred bytes, a fault rule under 1 KiB.
MAX_BODY_BYTES = 64 * 1024
# h11's limit (uvicorn's other parser): far above a browser's or an HTTP client's headers.
MAX_HEAD_BYTES = 16 * 1024
# A subscribe message is about 200 bytes; uvicorn's default would be 16 MiB per connection.
MAX_WS_MESSAGE_BYTES = 64 * 1024

# How long a refused connection may still send (its bytes dropped) before it is cut:
# closing at once, with its head still arriving, would reset the connection, and the
# client could lose the 431 that says why.
_LINGER_S = 2.0


class BodyTooLarge(Exception):
    """Raised into the code that reads past the limit; ``BodyLimit`` answers 413."""


class BodyLimit:
    """Answer **413** ``{"detail": ...}`` to a request whose body is over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, f"the request body is {declared} bytes", limit)
            return
        received = 0
        exceeded = started = answered = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started, answered
            if exceeded:
                # The app caught the error and answers something of its own (FastAPI turns
                # a failure to read a body into a 400): the 413 says what happened.
                if message["type"] == "http.response.start" and not started:
                    started = answered = True
                    await _refuse(send, f"the request body passed {limit} bytes", limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            # Starlette's error middleware answers 500 (made a 413 above), then re-raises.
            if answered:
                return
            if started:
                raise
            await _refuse(send, f"the request body passed {limit} bytes", limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server has checked it is digits (llhttp refuses anything else); an
            # in-process client may not have, and then the count decides.
            return int(value) if value.isdigit() else None
    return None


async def _refuse(send: Send, what: str, limit: int) -> None:
    message = (
        f"{what}; the mock takes at most {limit} bytes (mocks.limits.MAX_BODY_BYTES): "
        "send a smaller body"
    )
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _HeadTooLarge(Exception):
    """Raised in the parser's callback to stop it at a head over the limit."""


class HeadLimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering **431** to a request head over
    ``MAX_HEAD_BYTES`` (the request line and every header, as they came on the wire).

    The reads of a head still arriving are counted after they are parsed, so at most the
    limit and one read are ever held; a head that arrives whole is measured once parsed.
    """

    _head_bytes: int | None = None  # read of the head under way; None between heads
    _message_ended = False  # a request ended in the read being handled
    _head_too_large = False  # a whole head, read at once, is over the limit
    _refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        # A head that came whole in one read was never counted: measure it (each header
        # line has ": " and CRLF besides its name and value).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            # Stops the parser at once; uvicorn then answers 400, made a 431 below.
            self._head_too_large = True
            raise _HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        self._message_ended = True
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the client leaves or the linger ends
        self._message_ended = False
        super().data_received(data)
        if self._refused or self._head_bytes is None or self.transport.is_closing():
            return
        # A head that began after another request ended in this same read (pipelining) owns
        # only its tail; it counts from the next read.
        if not (self._message_ended and self._head_bytes == 0):
            self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()

    def _refuse_head(self) -> None:
        self._refused = True
        message = (
            f"the request line and headers passed {MAX_HEAD_BYTES} bytes, the most the mock "
            "reads (mocks.limits.MAX_HEAD_BYTES): send fewer or shorter headers"
        )
        body = json.dumps({"detail": message}).encode()
        previous = self.cycle
        # With a pipelined answer still being written, a 431 would land inside it.
        if previous is None or previous.response_complete:
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_S, self.transport.close)
