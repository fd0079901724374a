"""ASGI middleware that journals every broker request and applies the fault plan to it.

It sits in front of the mock's routes: a faulted request may never reach the broker logic
(an error, a reset), reach it late (a delay) or reach it and have its answer spoiled (a
truncated body). Control-plane requests pass untouched and unjournaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks import wire
from mocks.control import PREFIX, ControlPlane
from mocks.faults import Decision, Error, Request
from mocks.faults.model import Close, Delay, Drop, Empty, Hang, Malformed, Reset, Truncated
from mocks.journal import Entry, protocol_headers

if TYPE_CHECKING:
    from mocks.vocabulary import Vocabulary

# (status, JSON body, extra headers) a mock answers with for an Error action on a request:
# the request too, since a broker's error may name it (Kiwoom's 1700 names the api-id and
# every Kiwoom answer echoes it in a header).
ErrorRenderer = Callable[[Error, Request], tuple[int, dict[str, Any], Mapping[str, str]]]

_JOURNALED_BODY_LIMIT = 64 * 1024
_ID_HEADERS = ("tr_id", "api-id")  # KIS names its transaction in tr_id, Kiwoom in api-id


class FaultInjector:
    """``vocabulary`` says what each request is and what its answer's code means, in
    Squall's terms (``mocks.vocabulary``), for the journal and for rules by kind."""

    def __init__(
        self,
        app: ASGIApp,
        plane: ControlPlane,
        render_error: ErrorRenderer,
        vocabulary: Vocabulary,
    ) -> None:
        self.app = app
        self.plane = plane
        self.render_error = render_error
        self.vocabulary = vocabulary

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        replay = _replaying(body, more, receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lowered = {name.lower(): value for name, value in headers}
        tr_id = next((lowered[h] for h in _ID_HEADERS if h in lowered), None)
        clock = self.plane.clock
        started = clock.now()
        kind = self.vocabulary.kind(scope["method"], scope["path"], tr_id)
        entry = self.plane.journal.open(
            at=round(started, 6),
            method=scope["method"],
            path=scope["path"],
            tr_id=tr_id,
            headers=protocol_headers(headers),
            query=_query(scope),
            body=_json_object(body),
            kind=kind,
        )
        request = Request(scope["method"], scope["path"], tr_id, kind)
        decision = self.plane.faults.decide(request, started)
        if decision is not None:
            entry.fault = decision.label
        recording = _recording(send, entry, self.vocabulary)
        try:
            await self._apply(decision, request, scope, replay, recording, entry)
        finally:
            entry.duration = round(clock.now() - started, 6)

    async def _apply(
        self,
        decision: Decision | None,
        request: Request,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: Entry,
    ) -> None:
        if decision is None:
            await self.app(scope, receive, send)
            return
        action = decision.action
        if isinstance(action, Delay):
            await asyncio.sleep(decision.delay)
            await self.app(scope, receive, send)
        elif isinstance(action, Error):
            status, payload, headers = self.render_error(action, request)
            body = json.dumps(payload, ensure_ascii=False).encode()
            await _send_bytes(send, status, body, headers)
        elif isinstance(action, Empty):
            await _send_bytes(send, action.status, b"")
        elif isinstance(action, Malformed):
            await _send_bytes(send, 200, action.text.encode())
        elif isinstance(action, Hang):
            entry.outcome = "abandoned"
            await _until_disconnect(receive, action.max_seconds)
            if action.max_seconds is not None:
                wire.close(scope)
                await _until_disconnect(receive, None)
        elif isinstance(action, Drop):
            await self._drop(action, scope, receive, entry, self.vocabulary)
        elif isinstance(action, Reset):
            entry.outcome = "reset"
            wire.reset(scope)
            await _until_disconnect(receive, None)
        elif isinstance(action, Close):
            entry.outcome = "closed"
            wire.close(scope)
            await _until_disconnect(receive, None)
        elif isinstance(action, Truncated):
            await self._truncate(action, scope, receive, entry)

    async def _drop(
        self, action: Drop, scope: Scope, receive: Receive, entry: Entry, vocabulary: Vocabulary
    ) -> None:
        """Let the broker answer into the void, then hold the connection like a hang."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in captured if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        entry.status = None if start is None else start["status"]
        payload = _json_object(body)
        entry.code = _code_of(payload)
        entry.meaning = vocabulary.meaning(entry.code, payload)
        entry.ok = _succeeded(entry.status, payload)
        entry.outcome = "dropped"
        await _until_disconnect(receive, action.max_seconds)
        if action.max_seconds is not None:
            wire.close(scope)
            await _until_disconnect(receive, None)

    async def _truncate(
        self, action: Truncated, scope: Scope, receive: Receive, entry: Entry
    ) -> None:
        """Let the broker answer, then send its head and part of its body, and hang up."""
        wire.transport_of(scope)  # fail before the broker acts if there is no socket
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = next(m for m in captured if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        entry.status = start["status"]
        payload = _json_object(body)
        entry.code = _code_of(payload)
        entry.ok = _succeeded(entry.status, payload)
        entry.outcome = "truncated"
        head = [f"HTTP/1.1 {start['status']} OK".encode()]
        for name, value in start.get("headers", []):
            if name.lower() not in (b"content-length", b"connection"):
                head.append(name + b": " + value)
        head += [f"content-length: {len(body)}".encode(), b"connection: close", b"", b""]
        wire.write_raw(scope, b"\r\n".join(head) + body[: int(len(body) * action.fraction)])
        wire.close(scope)
        await _until_disconnect(receive, None)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, unless it's larger than the journal keeps (then stream it on)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > _JOURNALED_BODY_LIMIT:
            return b"".join(chunks), True


def _replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """``receive`` for the route: what was read first (all of it, or the first
    ``_JOURNALED_BODY_LIMIT`` and more to come), then the rest from the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def _recording(send: Send, entry: Entry, vocabulary: Vocabulary) -> Send:
    """Note the status and the broker's result code of whatever the route answers."""
    chunks: list[bytes] = []

    async def record(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry.status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                payload = _json_object(b"".join(chunks))
                entry.code = _code_of(payload)
                entry.meaning = vocabulary.meaning(entry.code, payload)
                entry.ok = _succeeded(entry.status, payload)
        await send(message)

    return record


def _code_of(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return None
    for key in ("msg_cd", "error_code", "return_code"):
        if key in payload:
            return str(payload[key])
    return None


def _succeeded(status: int | None, payload: dict[str, Any] | None) -> bool:
    """A 2xx answer whose JSON body reports no error: rt_cd "0" (KIS), return_code 0
    (Kiwoom), or no verdict keys at all (token and hashkey answers); error_code: refused."""
    if status is None or not 200 <= status < 300:
        return False
    if payload is None:
        return False
    if "error_code" in payload:
        return False
    if "rt_cd" in payload:
        return str(payload["rt_cd"]) == "0"
    if "return_code" in payload:
        return str(payload["return_code"]) == "0"
    return True


def _json_object(body: bytes) -> dict[str, Any] | None:
    if not body or len(body) > _JOURNALED_BODY_LIMIT:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return dict(parse_qsl(raw, keep_blank_values=True))


async def _send_bytes(
    send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    extra = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
    ]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _until_disconnect(receive: Receive, limit: float | None) -> None:
    """Wait for the client to hang up (or ``limit`` seconds)."""

    async def drain() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(drain(), limit)
