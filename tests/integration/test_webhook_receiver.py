"""The webhook receiver on a real loopback socket, with the system's own alert notifier
posting to it: an outage refuses connections (and cuts the notifier's kept-alive one) until
it ends, a hang holds each attempt until the notifier's timeout, and in both the alert
arrives once the receiver is back. On virtual time: the receiver, its outage and the
notifier's backoff all run on the test's loop."""

from __future__ import annotations

import asyncio
import itertools
import random

import httpx
import pytest

from mocks.webhook import WebhookFaultRule, serve_webhook
from system.trading.alerts import Alert, AlertNotifier, AlertSettings

pytestmark = pytest.mark.looptime


def rule(kind: str, start: float, end: float) -> WebhookFaultRule:
    return WebhookFaultRule.model_validate(
        {"what": {"kind": kind}, "when": {"from": start, "until": end}}
    )


def halt(alert_id: str) -> Alert:
    return Alert(
        category="halt",
        severity="critical",
        title="trading halted",
        message="3 failures",
        at=asyncio.get_running_loop().time(),
        alert_id=alert_id,
    )


async def settle(notifier: AlertNotifier) -> None:
    while True:
        if not notifier.metrics()["alerts_pending"]:
            return
        await asyncio.sleep(0.5)


async def test_an_outage_refuses_connections_until_it_ends_then_serves_again() -> None:
    async with serve_webhook() as served, httpx.AsyncClient() as http:
        receiver = served.receiver
        receiver.reset()
        assert (await http.post(served.hook_url, json={"alert_id": "a"})).status_code == 200
        receiver.add_fault(rule("outage", 10, 40))
        await asyncio.sleep(11)
        with pytest.raises(httpx.ConnectError):
            await http.post(served.hook_url, json={"alert_id": "b"})
        await asyncio.sleep(30)
        assert (await http.post(served.hook_url, json={"alert_id": "c"})).status_code == 200
        assert [(e.alert_id, e.at // 1) for e in receiver.entries()] == [("a", 0), ("c", 41)]


async def test_the_notifier_delivers_after_an_outage_that_cut_its_connection() -> None:
    async with serve_webhook() as served:
        receiver = served.receiver
        receiver.reset()
        settings = AlertSettings(webhook_url=served.hook_url, max_attempts=10, backoff_max_s=30)
        async with AlertNotifier(settings, rng=random.Random(7)) as notifier:
            notifier.notify(halt("before"))  # opens a connection the notifier keeps alive
            await settle(notifier)
            receiver.add_fault(rule("outage", 20, 80))
            await asyncio.sleep(25)
            notifier.notify(halt("during"))
            await settle(notifier)
            metrics = notifier.metrics()
        entries = receiver.entries()
    assert [(e.alert_id, e.outcome) for e in entries] == [
        ("before", "delivered"),
        ("during", "delivered"),
    ]
    assert entries[1].at >= 80
    assert metrics["alerts_delivered"] == 2
    assert metrics["alerts_retried"] >= 3
    assert metrics["alerts_failed"] == 0


async def test_a_hang_holds_each_attempt_until_the_notifier_gives_it_up() -> None:
    async with serve_webhook() as served:
        receiver = served.receiver
        receiver.reset()
        receiver.add_fault(rule("hang", 0, 30))
        settings = AlertSettings(
            webhook_url=served.hook_url, timeout_s=5, max_attempts=10, backoff_max_s=30
        )
        async with AlertNotifier(settings, rng=random.Random(7)) as notifier:
            notifier.notify(halt("held"))
            await settle(notifier)
            metrics = notifier.metrics()
        entries = receiver.entries()
    outcomes = [e.outcome for e in entries]
    assert outcomes[-1] == "delivered"
    assert set(outcomes[:-1]) == {"hung"}
    assert len(outcomes) >= 3
    hung = [e.at for e in entries[:-1]]
    # Each attempt waited out the notifier's 5 s before the next began.
    assert all(later - earlier >= 5 for earlier, later in itertools.pairwise(hung))
    assert {e.alert_id for e in entries} == {"held"}
    assert metrics["alerts_delivered"] == 1
    assert metrics["alerts_retried"] == len(outcomes) - 1
