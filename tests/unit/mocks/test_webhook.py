"""The webhook receiver (``mocks.webhook``): what it journals, how each fault answers, and
when a fault is in force. In process (httpx's ASGI transport, or the ASGI calls by hand for
a hung request), on virtual time; the outage, which needs a socket, is proven in
tests/integration/test_webhook_receiver.py."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from mocks.webhook import HOOK_PATH, MAX_BODY_BYTES, WebhookFaultRule, WebhookReceiver

pytestmark = pytest.mark.looptime

ALERT = {
    "alert_id": "halt-0123456789abcdef",
    "category": "halt",
    "severity": "critical",
    "title": "trading halted: consecutive-failures",
    "message": "3 failed executions in a row (automatically)",
    "details": {},
    "at": 121.5,
}


def client_for(receiver: WebhookReceiver) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver), base_url="http://webhook.test"
    )


async def post(receiver: WebhookReceiver, body: Any = ALERT, **headers: str) -> httpx.Response:
    async with client_for(receiver) as http:
        return await http.post(
            HOOK_PATH,
            json=body,
            headers={"Idempotency-Key": ALERT["alert_id"], **headers},
        )


def rule(what: dict[str, Any], **when: float) -> WebhookFaultRule:
    return WebhookFaultRule.model_validate({"what": what, "when": when})


async def test_an_alert_is_answered_200_and_journaled_with_what_a_receiver_reads() -> None:
    receiver = WebhookReceiver()
    receiver.reset()
    await asyncio.sleep(12.5)
    response = await post(receiver)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    [entry] = receiver.entries()
    assert entry.to_json() == {
        "seq": 1,
        "at": 12.5,
        "path": HOOK_PATH,
        "alert_id": "halt-0123456789abcdef",
        "category": "halt",
        "severity": "critical",
        "title": "trading halted: consecutive-failures",
        "outcome": "delivered",
        "status": 200,
        "fault": None,
    }


async def test_an_error_fault_answers_its_status_in_its_window_only() -> None:
    receiver = WebhookReceiver()
    receiver.reset()
    receiver.add_fault(rule({"kind": "error"}, **{"from": 10, "until": 20}))
    receiver.add_fault(rule({"kind": "error", "status": 429}, **{"from": 30}))
    statuses = []
    for second in (5, 10, 19, 20, 30):
        await asyncio.sleep(second - receiver.clock.now())
        statuses.append((await post(receiver)).status_code)
    assert statuses == [200, 503, 503, 200, 429]
    assert [(e.at, e.outcome, e.status, e.fault) for e in receiver.entries()] == [
        (5.0, "delivered", 200, None),
        (10.0, "error", 503, "rule-1:error"),
        (19.0, "error", 503, "rule-1:error"),
        (20.0, "delivered", 200, None),
        (30.0, "error", 429, "rule-2:error"),
    ]


async def test_overlapping_faults_the_one_added_first_decides() -> None:
    receiver = WebhookReceiver()
    receiver.reset()
    receiver.add_fault(rule({"kind": "error", "status": 500}, **{"for": 10}))
    receiver.add_fault(rule({"kind": "error", "status": 502}))
    assert (await post(receiver)).status_code == 500
    await asyncio.sleep(10)
    assert (await post(receiver)).status_code == 502


async def test_a_hang_reads_the_alert_and_never_answers_until_the_client_leaves() -> None:
    receiver = WebhookReceiver()
    receiver.reset()
    receiver.add_fault(rule({"kind": "hang"}))
    body = httpx.Request("POST", "http://x", json=ALERT).read()
    gone = asyncio.Event()
    delivered = iter([{"type": "http.request", "body": body, "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        message = next(delivered, None)
        if message is not None:
            return message
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": HOOK_PATH, "headers": []}
    held = asyncio.create_task(receiver(scope, receive, send))
    await asyncio.sleep(300)
    assert not held.done()
    assert sent == []
    [entry] = receiver.entries()
    assert (entry.alert_id, entry.outcome, entry.status) == (ALERT["alert_id"], "hung", None)
    gone.set()  # the client gave up
    await asyncio.wait_for(held, 1)
    assert sent == []


@pytest.mark.parametrize(
    ("content", "status", "why"),
    [
        (b"not json", 400, "not a JSON object"),
        (b"[1, 2]", 400, "not a JSON object"),
        (b"{" + b" " * MAX_BODY_BYTES + b"}", 413, "too large"),
    ],
)
async def test_a_body_that_is_no_alert_is_refused_and_journaled(
    content: bytes, status: int, why: str
) -> None:
    receiver = WebhookReceiver()
    async with client_for(receiver) as http:
        response = await http.post(HOOK_PATH, content=content)
    assert response.status_code == status
    assert why in response.json()["error"]
    [entry] = receiver.entries()
    assert (entry.outcome, entry.status, entry.alert_id, entry.category) == (
        "error",
        status,
        None,
        None,
    )


async def test_only_post_is_taken_and_nothing_else_is_journaled() -> None:
    receiver = WebhookReceiver()
    async with client_for(receiver) as http:
        response = await http.get(HOOK_PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert receiver.entries() == []


async def test_the_body_s_alert_id_stands_in_for_a_missing_idempotency_key() -> None:
    receiver = WebhookReceiver()
    async with client_for(receiver) as http:
        await http.post(HOOK_PATH, json={"alert_id": "release-1", "category": "release"})
    [entry] = receiver.entries()
    assert (entry.alert_id, entry.category, entry.severity) == ("release-1", "release", None)


async def test_an_outage_needs_the_served_receiver() -> None:
    with pytest.raises(RuntimeError, match="serve it with serve_webhook"):
        WebhookReceiver().add_fault(rule({"kind": "outage"}))


async def test_reset_forgets_rules_and_journal_and_restarts_the_clock() -> None:
    receiver = WebhookReceiver()
    receiver.reset()
    receiver.add_fault(rule({"kind": "error"}))
    await post(receiver)
    await asyncio.sleep(40)
    receiver.reset()
    assert receiver.clock.now() == 0
    assert receiver.entries() == []
    assert (await post(receiver)).status_code == 200
    assert receiver.add_fault(rule({"kind": "hang"})).id == "rule-1"


def test_a_fault_holds_for_its_whole_window() -> None:
    for when in ({"first": 1}, {"every": 2}, {"probability": 0.5}):
        with pytest.raises(ValidationError, match="holds for its whole window"):
            rule({"kind": "error"}, **when)
    with pytest.raises(ValidationError):
        rule({"kind": "error", "status": 302})  # not an error status
    with pytest.raises(ValidationError):
        rule({"kind": "down"})


async def test_a_rule_id_is_unique() -> None:
    receiver = WebhookReceiver()
    receiver.add_fault(WebhookFaultRule.model_validate({"id": "x", "what": {"kind": "hang"}}))
    with pytest.raises(ValueError, match="already exists"):
        receiver.add_fault(WebhookFaultRule.model_validate({"id": "x", "what": {"kind": "hang"}}))
