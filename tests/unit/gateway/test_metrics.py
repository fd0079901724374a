"""GET /metrics: Prometheus text from a registry of the app's own."""

from __future__ import annotations

from system.gateway import Gateway, GatewaySettings
from system.gateway.metrics import gateway_values, metric_name, metric_names, render
from system.trading.alerts import Alert, AlertNotifier, AlertSettings
from system.trading.alerts import metric_names as alert_names
from tests.unit.gateway.fakes import FakeFeed, FakeService, FakeSocket, settle


def lines(gateway: Gateway) -> set[str]:
    return {
        line for line in render(gateway.registry).decode().splitlines() if not line.startswith("#")
    }


async def test_the_gateway_service_and_feed_numbers_are_exposed(gateway: Gateway) -> None:
    sockets = [FakeSocket(), FakeSocket()]
    ids = [gateway.manager.connect(s) for s in sockets]
    for client in ids:
        gateway.manager.subscribe(client, "005930")
    gateway.manager.subscribe(ids[0], "signals")
    await settle()
    text = lines(gateway)
    expected = {
        "gateway_connections 2.0",
        "gateway_connections_opened_total 2.0",
        "gateway_messages_sent_total 2.0",  # one "connected" each
        "gateway_messages_dropped_total 0.0",
        'gateway_topic_subscribers{topic="005930"} 2.0',
        'gateway_topic_subscribers{topic="signals"} 1.0',
        "gateway_subscribed_tickers 1.0",
        'gateway_clients_closed_total{reason="saturated"} 0.0',
        'gateway_feed_state{state="live"} 1.0',
        'gateway_feed_state{state="reconnecting"} 0.0',
        "gateway_feed_subscriptions_owned 1.0",
        "gateway_health_state 0.0",
        "gateway_client_errors_total 0.0",
        "service_quotes_served 0.0",
        "service_health_state 0.0",
        "feed_messages 1.0",  # the fake counts calls: one subscribe
        "feed_reconnects 0.0",  # a feed metric without the prefix gets it
    }
    assert expected - text == set()


async def test_two_gateways_in_one_process_do_not_collide() -> None:
    first = Gateway(FakeService(), FakeFeed(), GatewaySettings())
    second = Gateway(FakeService(), FakeFeed(), GatewaySettings())
    first.manager.connect(FakeSocket())
    assert "gateway_connections 1.0" in lines(first)
    assert "gateway_connections 0.0" in lines(second)
    await first.manager.close_all()


def test_metric_names_are_made_valid() -> None:
    assert metric_name("orders.acked-now", "service_") == "service_orders_acked_now"
    assert metric_name("5xx") == "_5xx"


async def test_gateway_values_cover_every_named_metric_with_one_number(gateway: Gateway) -> None:
    client = gateway.manager.connect(FakeSocket())
    gateway.manager.subscribe(client, "005930")
    gateway.manager.subscribe(client, "000660")
    await settle()
    values = gateway_values(gateway)
    assert tuple(values) == metric_names()
    assert values["gateway_topic_subscribers"] == 2.0  # summed over both topics
    assert values["gateway_feed_state"] == 0.0  # live, numbered as feed_state numbers it
    assert values["gateway_connections"] == 1.0


async def test_the_alert_notifier_s_numbers_are_exposed_under_their_own_names() -> None:
    notifier = AlertNotifier(AlertSettings())  # no webhook: alerts are only logged
    notifier.notify(
        Alert(category="halt", severity="critical", title="trading halted", message="", at=0.0)
    )
    with_alerts = Gateway(FakeService(), FakeFeed(), GatewaySettings(), alerts=notifier)
    text = lines(with_alerts)
    assert {f"{name} {1.0 if name == 'alerts_sent' else 0.0}" for name in alert_names()} <= text
    without = lines(Gateway(FakeService(), FakeFeed(), GatewaySettings()))
    assert not any(line.startswith("alerts_") for line in without)
    await notifier.aclose()
