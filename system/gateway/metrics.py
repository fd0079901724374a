"""``GET /metrics``: the gateway's, the service's and the feed's numbers, Prometheus text.

One ``CollectorRegistry`` per app (never prometheus-client's global one), so several
gateways in one process — the harness runs a stack per scenario — never collide. The
collector reads live state when scraped; nothing is counted twice.

Names: ``gateway_*`` for the gateway; the service's metrics as gauges named
``service_<name>`` (``service_quotes_served``); the feed's as gauges under their own
``feed_*`` names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from system.health import HEALTH_CODES
from system.market.feed import FEED_STATE_CODES
from system.market.model import FeedState

if TYPE_CHECKING:
    from system.gateway.app import Gateway

FEED_STATES: tuple[FeedState, ...] = ("connecting", "live", "stalled", "reconnecting", "stopped")
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str, prefix: str = "") -> str:
    """A valid Prometheus name for ``prefix + name`` (other characters become ``_``)."""
    cleaned = _INVALID.sub("_", prefix + name)
    return cleaned if not cleaned[:1].isdigit() else f"_{cleaned}"


class GatewayCollector(Collector):
    """Reads one gateway's parts, its service's and its feed's metrics on every scrape."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        yield from self._gateway()
        yield from _gauges(self.gateway.service.metrics(), "service_", "trading service metric")
        feed = {
            (name if name.startswith("feed_") else f"feed_{name}"): value
            for name, value in self.gateway.feed.metrics().items()
        }
        yield from _gauges(feed, "", "realtime feed metric")

    def _gateway(self) -> Iterator[Metric]:
        gateway = self.gateway
        totals = gateway.manager.totals
        yield GaugeMetricFamily(
            "gateway_connections", "WebSocket clients connected now", value=len(gateway.manager)
        )
        yield _counter(
            "gateway_connections_opened", "WebSocket clients ever connected", totals.connections
        )
        yield _counter(
            "gateway_messages_sent", "messages written to client sockets", totals.messages_sent
        )
        yield _counter(
            "gateway_messages_dropped",
            "messages dropped from full client queues (oldest first)",
            totals.messages_dropped,
        )
        yield _counter(
            "gateway_messages_coalesced",
            "queued prices replaced by a newer price of the same ticker",
            totals.messages_coalesced,
        )
        closed = CounterMetricFamily(
            "gateway_clients_closed", "clients the gateway closed, by reason", labels=["reason"]
        )
        closed.add_metric(["saturated"], totals.closed_saturated)
        closed.add_metric(["heartbeat"], totals.closed_stale)
        yield closed
        yield _counter(
            "gateway_send_failures", "sends that failed (peer gone)", totals.send_failures
        )
        topics = gateway.manager.topics()
        subscribers = GaugeMetricFamily(
            "gateway_topic_subscribers", "clients subscribed to each topic", labels=["topic"]
        )
        for topic, count in topics.items():
            subscribers.add_metric([topic], count)
        yield subscribers
        yield GaugeMetricFamily(
            "gateway_subscribed_tickers",
            "tickers with at least one subscriber",
            value=sum(1 for topic in topics if topic.isdigit()),
        )
        yield _counter("gateway_pings_sent", "heartbeat pings queued", gateway.heartbeat.pings_sent)
        yield _counter(
            "gateway_pongs_received", "heartbeat pongs received", gateway.heartbeat.pongs_received
        )
        prices = gateway.prices
        yield _counter("gateway_price_updates_sent", "price updates broadcast", prices.updates_sent)
        yield _counter(
            "gateway_fallback_quotes", "REST fallback quotes served", prices.fallback_quotes
        )
        yield _counter(
            "gateway_fallback_quote_failures",
            "REST fallback quotes failed",
            prices.fallback_failures,
        )
        yield _counter("gateway_feed_refusals", "feed subscriptions refused", prices.feed_refusals)
        yield GaugeMetricFamily(
            "gateway_feed_subscriptions_owned",
            "feed subscriptions the gateway made and will release",
            value=len(prices.owned),
        )
        yield _counter("gateway_signals_published", "signals published", gateway.signals.published)
        yield _counter(
            "gateway_client_errors",
            "client messages answered with an error",
            gateway.dispatcher.errors_sent,
        )
        state = GaugeMetricFamily(
            "gateway_feed_state", "1 for the realtime feed's current state", labels=["state"]
        )
        for feed_state in FEED_STATES:
            state.add_metric([feed_state], 1.0 if prices.state == feed_state else 0.0)
        yield state
        yield GaugeMetricFamily(
            "gateway_health_state",
            "the /health verdict: 0 healthy, 1 degraded, 2 unhealthy",
            value=HEALTH_CODES[gateway.health().state],
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauges(values: Mapping[str, float], prefix: str, what: str) -> Iterator[Metric]:
    for name, value in sorted(values.items()):
        yield GaugeMetricFamily(metric_name(name, prefix), f"{what} {name}", value=float(value))


def build_registry(gateway: Gateway) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


# The gateway's own families, as ``GatewayCollector`` yields them; a unit test holds the two
# together. Scenario files name these, so they are known without a running gateway.
GATEWAY_METRICS = (
    "gateway_connections",
    "gateway_connections_opened",
    "gateway_messages_sent",
    "gateway_messages_dropped",
    "gateway_messages_coalesced",
    "gateway_clients_closed",
    "gateway_send_failures",
    "gateway_topic_subscribers",
    "gateway_subscribed_tickers",
    "gateway_pings_sent",
    "gateway_pongs_received",
    "gateway_price_updates_sent",
    "gateway_fallback_quotes",
    "gateway_fallback_quote_failures",
    "gateway_feed_refusals",
    "gateway_feed_subscriptions_owned",
    "gateway_signals_published",
    "gateway_client_errors",
    "gateway_feed_state",
    "gateway_health_state",
)


def metric_names() -> tuple[str, ...]:
    """The names ``gateway_values`` reports."""
    return GATEWAY_METRICS


def gateway_values(gateway: Gateway) -> dict[str, float]:
    """The gateway's own metrics as one number per family: a labelled family is summed over
    its labels (``gateway_clients_closed``: closed for any reason), except the one-hot
    ``gateway_feed_state``, which becomes the state's number as ``feed_state`` gives it
    (``FEED_STATE_CODES``: 0 live … 4 stopped), so the two never disagree."""
    values: dict[str, float] = {}
    for family in GatewayCollector(gateway)._gateway():
        samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
        if family.name == "gateway_feed_state":
            values[family.name] = float(FEED_STATE_CODES[gateway.prices.state])
        else:
            values[family.name] = float(sum(sample.value for sample in samples))
    return values
