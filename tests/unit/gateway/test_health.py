"""GET /health's verdict: the worst of broker, feed and gateway; 503 only when unhealthy."""

from __future__ import annotations

import asyncio

import pytest

from system.gateway import Gateway, GatewaySettings
from system.market.errors import SubscriptionLimitExceeded
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeHalt, FakeService, FakeSocket, settle

pytestmark = pytest.mark.looptime


def fakes(gateway: Gateway) -> tuple[FakeService, FakeFeed]:
    assert isinstance(gateway.service, FakeService)
    assert isinstance(gateway.feed, FakeFeed)
    return gateway.service, gateway.feed


async def test_all_healthy_is_200_with_every_part(gateway: Gateway) -> None:
    gateway.manager.connect(FakeSocket())
    verdict = gateway.health()
    assert (verdict.state, verdict.http_status) == ("healthy", 200)
    assert verdict.to_json() == {
        "state": "healthy",
        "reasons": [],
        "gateway": {"state": "healthy", "reasons": [], "connections": 1},
        "broker": {"state": "healthy", "reasons": []},
        "feed": {
            "state": "healthy",
            "reasons": [],
            "feed_state": "live",
            "since": 0.0,
            "reconnects": 0,
            "subscriptions": [],
            "last_message_at": None,
        },
    }


async def test_a_reconnecting_feed_is_degraded_not_unhealthy(gateway: Gateway) -> None:
    _, feed = fakes(gateway)
    feed.set_state("reconnecting", "connection reset")
    await asyncio.sleep(12.5)
    verdict = gateway.health()
    assert (verdict.state, verdict.http_status) == ("degraded", 200)
    assert verdict.to_json()["reasons"] == [
        "realtime feed reconnecting for 12.5 s (connection reset); prices come from REST "
        "quotes every 5 s, marked stale"
    ]


async def test_a_refused_ticker_degrades_the_feed(gateway: Gateway) -> None:
    _, feed = fakes(gateway)
    feed.refuse["000660"] = SubscriptionLimitExceeded(code="000660", wanted=1, limit=1)
    gateway.manager.subscribe(gateway.manager.connect(FakeSocket()), "000660")
    await settle()
    verdict = gateway.health()
    assert verdict.feed.state == "degraded"
    assert verdict.feed.reasons[0].startswith("the feed refused 000660 (cannot subscribe 000660")


async def test_an_unhealthy_broker_is_503(gateway: Gateway) -> None:
    service, _ = fakes(gateway)
    service.state, service.reasons = "unhealthy", ("3 consecutive broker failures",)
    verdict = gateway.health()
    assert (verdict.state, verdict.http_status) == ("unhealthy", 503)
    assert verdict.to_json()["reasons"] == ["3 consecutive broker failures"]


async def test_a_gateway_that_is_not_started_is_503() -> None:
    gateway = Gateway(FakeService(), FakeFeed(), GatewaySettings())
    verdict = gateway.health()
    assert (verdict.state, verdict.http_status) == ("unhealthy", 503)
    assert verdict.gateway.reasons == ("the gateway is not started (or already stopped)",)


async def test_a_dead_background_task_is_503(gateway: Gateway) -> None:
    task = gateway.prices.tasks[0]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    verdict = gateway.health()
    assert verdict.http_status == 503
    assert verdict.gateway.reasons == (
        "gateway background task(s) stopped: gateway feed sync; restart it",
    )


async def test_a_trading_halt_is_degraded_with_its_reason_not_unhealthy() -> None:
    desk = FakeDesk()
    gateway = Gateway(FakeService(), FakeFeed(), GatewaySettings(), kill_switch=desk)
    await gateway.start()
    try:
        running = gateway.health().to_json()
        desk.halt = FakeHalt("daily-loss", "lost 3.1 % today", 40.0, automatic=True)
        halted = gateway.health()
        desk.halt = FakeHalt("kill switch", "broker incident", 41.0, automatic=False)
        by_hand = gateway.health()
    finally:
        await gateway.stop()
    assert (running["state"], running["trading"]) == (
        "healthy",
        {"state": "healthy", "reasons": []},
    )
    assert (halted.state, halted.http_status) == ("degraded", 200)
    reason = (
        "trading halted automatically (daily-loss): lost 3.1 % today; no order is sent until "
        'an operator releases it (POST /api/kill-switch {"engaged": false})'
    )
    assert halted.to_json()["trading"] == {"state": "degraded", "reasons": [reason]}
    assert halted.to_json()["reasons"] == [reason]
    assert by_hand.trading is not None
    assert by_hand.trading.reasons[0].startswith("trading halted by hand (kill switch): broker")


async def test_without_a_desk_health_has_no_trading_part(gateway: Gateway) -> None:
    assert gateway.health().trading is None
    assert "trading" not in gateway.health().to_json()


async def test_a_halt_does_not_hide_an_unhealthy_broker() -> None:
    service = FakeService()
    service.state, service.reasons = "unhealthy", ("3 consecutive broker failures",)
    desk = FakeDesk(FakeHalt("kill switch", "why", 1.0, automatic=False))
    gateway = Gateway(service, FakeFeed(), GatewaySettings(), kill_switch=desk)
    await gateway.start()
    try:
        verdict = gateway.health()
    finally:
        await gateway.stop()
    assert (verdict.state, verdict.http_status) == ("unhealthy", 503)
    assert verdict.to_json()["reasons"][0] == "3 consecutive broker failures"
    assert verdict.to_json()["reasons"][1].startswith("trading halted by hand")
