"""The alert notifier over real loopback sockets: a webhook that answers 503 twice before
it recovers, one that is down (connection refused) while the trading loop keeps raising
alerts, and one that comes up while an alert is being retried.

The webhook is a few lines of HTTP/1.1 on ``asyncio.start_server``, inside the test's own
loop, so it shares the notifier's clock. Real time, with backoffs of milliseconds: this
proves the real connection path (httpx, its pool, keep-alive, refused connections).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from harness.ports import free_port
from system.trading.alerts import Alert, AlertNotifier, AlertSettings

TOKEN = "T0KEN-of-the-webhook-never-log"
WAIT_S = 10.0  # real seconds; every step here takes milliseconds
# notify() is a log line and an append: far below this even on a loaded CI machine.
INSTANT_S = 0.05


@dataclass(frozen=True)
class Received:
    request_line: str
    alert_id: str
    idempotency_key: str
    body: dict[str, Any]


class TinyWebhook:
    """Answers each POST with the next status of ``statuses`` (the last one forever) and
    records what arrived, in arrival order. Keeps connections alive, as real webhooks do."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[Received] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:  # the client closed the connection
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                self.received.append(
                    Received(lines[0], body["alert_id"], headers["idempotency-key"], body)
                )
                status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n"
                    "Content-Type: application/json\r\n\r\n{}".encode()
                )
                await writer.drain()
        finally:
            writer.close()

    @property
    def ids(self) -> list[str]:
        return [received.alert_id for received in self.received]


@asynccontextmanager
async def serving(webhook: TinyWebhook, port: int = 0) -> AsyncIterator[str]:
    """``webhook`` on a loopback port; yields its URL (with a token in path and query)."""
    server = await asyncio.start_server(webhook.handle, "127.0.0.1", port)
    async with server:
        bound = server.sockets[0].getsockname()[1]
        yield url_at(bound)


def url_at(port: int) -> str:
    return f"http://127.0.0.1:{port}/hooks/{TOKEN}?key={TOKEN}"


def settings(url: str, **overrides: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "webhook_url": url,
        "timeout_s": 2.0,
        "max_attempts": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.02,
        "close_timeout_s": WAIT_S,
    }
    values.update(overrides)
    return AlertSettings(**values)


def alert(alert_id: str) -> Alert:
    return Alert(
        category="halt",
        severity="critical",
        title="Trading halted",
        message="consecutive order failures",
        details={"failures": "5"},
        at=asyncio.get_running_loop().time(),
        alert_id=alert_id,
    )


def timed_notify(notifier: AlertNotifier, raised: Alert) -> float:
    """Seconds of wall time ``notify`` took."""
    started = time.perf_counter()
    notifier.notify(raised)
    return time.perf_counter() - started


async def settle(notifier: AlertNotifier) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            if not notifier.metrics()["alerts_pending"]:
                return
            await asyncio.sleep(0.005)


async def test_a_webhook_answering_503_twice_gets_every_alert_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    webhook = TinyWebhook(503, 503, 200)
    with caplog.at_level(logging.DEBUG):
        async with (
            serving(webhook) as url,
            AlertNotifier(settings(url), rng=random.Random(1)) as notifier,
        ):
            took = [timed_notify(notifier, alert(f"a{n}")) for n in range(3)]
            assert max(took) < INSTANT_S
            await settle(notifier)

    # a0 twice refused, then accepted; the others behind it, in the order raised.
    assert webhook.ids == ["a0", "a0", "a0", "a1", "a2"]
    assert [received.idempotency_key for received in webhook.received] == webhook.ids
    assert {received.request_line for received in webhook.received} == {
        f"POST /hooks/{TOKEN}?key={TOKEN} HTTP/1.1"
    }
    assert webhook.received[-1].body == {
        "alert_id": "a2",
        "category": "halt",
        "severity": "critical",
        "title": "Trading halted",
        "message": "consecutive order failures",
        "details": {"failures": "5"},
        "at": webhook.received[-1].body["at"],
    }
    assert notifier.metrics() == {
        "alerts_sent": 3,
        "alerts_delivered": 3,
        "alerts_retried": 2,
        "alerts_failed": 0,
        "alerts_rejected": 0,
        "alerts_dropped": 0,
        "alerts_pending": 0,
    }
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request: POST http://127.0.0.1:" in text  # httpx's line, token hidden
    assert TOKEN not in text


async def test_with_the_webhook_down_trading_goes_on_and_the_failures_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = url_at(free_port())  # nothing listens there: every connection is refused
    ticks, alerts_every = 40, 8
    period_s = 0.005
    took: list[float] = []
    lateness: list[float] = []

    async def trading_loop(notifier: AlertNotifier) -> None:
        # Stands in for the trading core: it must keep its pace whatever the webhook does.
        loop = asyncio.get_running_loop()
        start = loop.time()
        for tick in range(ticks):
            lateness.append(loop.time() - (start + tick * period_s))
            if tick % alerts_every == 0:
                took.append(timed_notify(notifier, alert(f"down-{tick}")))
            await asyncio.sleep(max(0.0, start + (tick + 1) * period_s - loop.time()))

    with caplog.at_level(logging.INFO):
        async with AlertNotifier(settings(url), rng=random.Random(2)) as notifier:
            await asyncio.wait_for(trading_loop(notifier), WAIT_S)
            assert max(took) < INSTANT_S
            await settle(notifier)

    raised = ticks // alerts_every
    assert len(took) == raised
    # A refused connection answers at once; the loop was never held up by the notifier.
    assert max(lateness) < 0.5
    assert notifier.metrics() == {
        "alerts_sent": raised,
        "alerts_delivered": 0,
        "alerts_retried": raised * 2,  # max_attempts 3: two retries each
        "alerts_failed": raised,
        "alerts_rejected": 0,
        "alerts_dropped": 0,
        "alerts_pending": 0,
    }
    given_up = [m for m in caplog.messages if "not delivered" in m]
    assert [m.split()[1] for m in given_up] == [f"down-{t}" for t in range(0, ticks, 8)]
    assert all("could not be reached (ConnectError" in m for m in given_up)
    assert TOKEN not in "\n".join(caplog.messages)


async def test_an_alert_retried_while_the_webhook_is_down_arrives_once_it_is_up() -> None:
    port = free_port()
    webhook = TinyWebhook(200)
    # Retries far enough apart that the server below is up before they run out.
    slow_retries = settings(url_at(port), max_attempts=10, backoff_base_s=0.05, backoff_max_s=0.1)
    async with AlertNotifier(slow_retries, rng=random.Random(3)) as notifier:
        notifier.notify(alert("while-down"))
        async with asyncio.timeout(WAIT_S):
            while True:  # until the first attempt has been refused
                if notifier.metrics()["alerts_retried"]:
                    break
                await asyncio.sleep(0.005)
        async with serving(webhook, port):
            await settle(notifier)

    assert webhook.ids == ["while-down"]
    metrics = notifier.metrics()
    assert metrics["alerts_delivered"] == 1
    assert metrics["alerts_failed"] == 0
    assert metrics["alerts_retried"] >= 1
