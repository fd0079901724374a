"""A webhook receiver: the operator's chat or pager, where the system's alerts arrive.

The system POSTs every alert as JSON to a webhook (``SQUALL_ALERT_WEBHOOK_URL``): in
production Slack, PagerDuty or an incident bot, something the operator has and a test
cannot run. ``WebhookReceiver`` stands in for it. It answers each POST ``200`` and
journals it (``WebhookEntry``: when, on its clock; the alert's id, category, severity and
title; how it was answered), and a fault rule breaks it for a window of its clock:

- ``outage``: the receiver is gone, as when its host is down: open connections are cut
  and new ones refused until the window ends; nothing reaches it, so nothing is journaled;
- ``error``: every POST is answered with an HTTP error (``status``, 503 by default);
- ``hang``: every POST is read and never answered; it is held until the client gives up.

Like every mock it imports nothing from ``system``: it reads the alert's JSON by the
payload's field names (``alert_id``, ``category``, ``severity``, ``title``) and the
``Idempotency-Key`` header, as a real receiver would. It has no HTTP control plane: the
harness runs it in its own process and loop and drives it directly (``add_fault``,
``reset``, ``entries``). Serve it with ``serve_webhook``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from starlette.types import Receive, Scope, Send

from mocks import wire
from mocks.clock import MockClock
from mocks.faults.model import RuleId, When, _Strict
from mocks.journal import BoundedLog
from mocks.server import MockServer, serve

# Where the system is told to POST: a path as a real webhook has one (without a secret).
HOOK_PATH = "/hooks/squall-alerts"
# A body larger than this is refused (413): alerts are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024

WebhookOutcome = Literal["delivered", "error", "hung"]


# --- faults ------------------------------------------------------------------------------


class WebhookOutage(_Strict):
    """The receiver is gone: open connections cut, new ones refused, for the window."""

    kind: Literal["outage"] = "outage"


class WebhookError(_Strict):
    """Answer every POST with this HTTP status (the body says why); 5xx and 429 are what a
    sender retries, other 4xx what it takes as a refusal of the request itself."""

    kind: Literal["error"] = "error"
    status: int = Field(default=503, ge=400, le=599)


class WebhookHang(_Strict):
    """Read every POST and never answer; hold it until the client gives up."""

    kind: Literal["hang"] = "hang"


WebhookAction = Annotated[WebhookOutage | WebhookError | WebhookHang, Field(discriminator="kind")]


class WebhookFaultRule(_Strict):
    """A fault on the receiver for a window of its clock (``when``: from, until or for).

    It holds for every POST in its window: a receiver that is down is down for everyone,
    so ``first``, ``every`` and ``probability`` are not taken.
    """

    id: RuleId = None
    what: WebhookAction
    when: When = When()

    @model_validator(mode="after")
    def _whole_window(self) -> WebhookFaultRule:
        when = self.when
        if when.first is not None or when.every is not None or when.probability is not None:
            raise ValueError(
                "a webhook fault holds for its whole window; give 'from', 'until' or 'for' only"
            )
        return self

    @property
    def label(self) -> str:
        """How the journal names it: "<rule id>:<kind>"."""
        return f"{self.id}:{self.what.kind}"


# --- the journal -------------------------------------------------------------------------


@dataclass
class WebhookEntry:
    """One POST the receiver got. ``at`` is seconds on the receiver's clock.

    ``alert_id`` is the ``Idempotency-Key`` header (else the body's ``alert_id``): a
    retried alert shows as several entries with one id. ``outcome``: ``delivered``
    (answered 2xx: the alert is with the operator), ``error`` (answered ``status``: an
    ``error`` fault's, or 400/413 for a body that is not a JSON object or is too large),
    ``hung`` (held unanswered by a ``hang`` fault).
    """

    seq: int
    at: float
    path: str
    alert_id: str | None
    category: str | None
    severity: str | None
    title: str | None
    outcome: WebhookOutcome
    status: int | None
    fault: str | None = None  # "<rule id>:<kind>" when a fault rule fired

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class WebhookJournal(BoundedLog[WebhookEntry]):
    """Every POST the receiver got, oldest first."""

    def record(self, **fields: Any) -> WebhookEntry:
        return self._append(lambda seq: WebhookEntry(seq=seq, **fields))

    def entries(self) -> list[WebhookEntry]:
        return self._select(0, None, lambda entry: True)


# --- the receiver ------------------------------------------------------------------------


class WebhookReceiver:
    """An ASGI app that takes alert POSTs on any path, journals them and answers 200, unless
    a fault rule says otherwise. ``outage`` rules act only while it is served
    (``serve_webhook``): they need its listening socket."""

    def __init__(self, clock: MockClock | None = None) -> None:
        self.clock = clock or MockClock()
        self.journal = WebhookJournal()
        self._rules: list[WebhookFaultRule] = []
        self._next_id = 1
        self._server: MockServer | None = None
        self._outages: set[asyncio.Task[None]] = set()
        self._under_way: set[asyncio.Task[None]] = set()

    # -- control --------------------------------------------------------------------------

    def add_fault(self, rule: WebhookFaultRule) -> WebhookFaultRule:
        """Add ``rule`` (a ``for`` window counts from now); returns it as stored. When rules
        overlap, the one added first decides."""
        rule_id = rule.id or f"rule-{self._next_id}"
        self._next_id += 1
        if any(existing.id == rule_id for existing in self._rules):
            raise ValueError(f"a fault rule with id {rule_id!r} already exists")
        stored = rule.model_copy(
            update={"id": rule_id, "when": rule.when.resolved(self.clock.now())}
        )
        self._rules.append(stored)
        if isinstance(stored.what, WebhookOutage):
            if self._server is None:
                raise RuntimeError(
                    "an outage takes the receiver's socket away; serve it with serve_webhook()"
                )
            task = asyncio.get_running_loop().create_task(
                self._outage(stored, self._server), name=f"webhook {stored.label}"
            )
            self._outages.add(task)
            task.add_done_callback(self._outages.discard)
        return stored

    def reset(self) -> None:
        """Back to the start: no rules, an empty journal, the clock at zero. Outages not yet
        begun are called off; one under way runs to its end (stopping it halfway would
        leave the receiver without its socket)."""
        for task in self._outages - self._under_way:
            task.cancel()
        self._rules.clear()
        self._next_id = 1
        self.journal.clear()
        self.clock.start()

    def entries(self) -> list[WebhookEntry]:
        return self.journal.entries()

    def decide(self, now: float) -> WebhookFaultRule | None:
        """The rule in force at ``now`` on the receiver's clock, if any (the first added)."""
        return next((rule for rule in self._rules if rule.when.in_window(now)), None)

    async def _outage(self, rule: WebhookFaultRule, server: MockServer) -> None:
        start = rule.when.from_ or 0.0
        end = math.inf if rule.when.until is None else rule.when.until
        wait = start - self.clock.now()
        if wait > 0:
            await asyncio.sleep(wait)
        if end > self.clock.now():
            task = asyncio.current_task()
            assert task is not None
            self._under_way.add(task)
            try:
                await server.listener.outage(end - self.clock.now())
            finally:
                self._under_way.discard(task)

    async def _stop_outages(self) -> None:
        tasks = list(self._outages)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- HTTP -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a WebSocket handshake: refused by the server when the app does not accept
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "a webhook takes POST"}, [(b"allow", b"POST")])
            return
        body, too_large = await _read_body(receive)
        now = self.clock.now()
        rule = self.decide(now)
        if rule is not None and isinstance(rule.what, WebhookOutage):
            # Only a request racing the outage's start gets here: it meets a dead host.
            wire.reset(scope)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        alert = _json_object(body)
        key = headers.get("idempotency-key") or _text(alert, "alert_id")

        def record(outcome: WebhookOutcome, status: int | None) -> None:
            self.journal.record(
                at=round(now, 6),
                path=scope["path"],
                alert_id=key,
                category=_text(alert, "category"),
                severity=_text(alert, "severity"),
                title=_text(alert, "title"),
                outcome=outcome,
                status=status,
                fault=None if rule is None else rule.label,
            )

        # A broken receiver is broken whatever it is sent: the fault comes first.
        if rule is not None and isinstance(rule.what, WebhookError):
            record("error", rule.what.status)
            await _answer(send, rule.what.status, {"error": f"fault {rule.label}"})
        elif rule is not None:
            record("hung", None)
            await _until_disconnected(receive)
        elif too_large or alert is None:
            status = 413 if too_large else 400
            record("error", status)
            why = "too large" if too_large else "not a JSON object"
            await _answer(send, status, {"error": f"the alert's body is {why}"})
        else:
            record("delivered", 200)
            await _answer(send, 200, {"ok": True})


@contextlib.asynccontextmanager
async def serve_webhook(
    receiver: WebhookReceiver | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[ServedWebhook]:
    """Serve ``receiver`` (a new one by default) on a loopback port until the block exits."""
    receiver = receiver or WebhookReceiver()
    # The receiver bounds bodies itself (MAX_BODY_BYTES), and journals what it refuses.
    async with serve(receiver, host, port, ws_ping_interval=None, max_body_bytes=None) as server:
        receiver._server = server
        receiver.clock.start()
        try:
            yield ServedWebhook(receiver, server.url)
        finally:
            await receiver._stop_outages()
            receiver._server = None


@dataclass(frozen=True)
class ServedWebhook:
    """A served receiver: ``hook_url`` is what the system is given as its webhook."""

    receiver: WebhookReceiver
    url: str

    @property
    def hook_url(self) -> str:
        return self.url + HOOK_PATH


# --- ASGI helpers --------------------------------------------------------------------------


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it went past ``MAX_BODY_BYTES`` (then it is cut)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(
    send: Send, status: int, payload: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(alert: dict[str, Any] | None, key: str) -> str | None:
    value = None if alert is None else alert.get(key)
    return value if isinstance(value, str) else None
