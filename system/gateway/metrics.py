"""``GET /metrics``: the gateway's, the service's, the feed's, the storage's and the alert
notifier's numbers (the storage's when the system has a database, the notifier's when it
has a trading desk), Prometheus text.

One ``CollectorRegistry`` per app (never prometheus-client's global one), so several
gateways in one process — the harness runs a stack per scenario — never collide. The
collector reads live state when scraped; nothing is counted twice.

The gateway's own families are one table, ``GATEWAY_FAMILIES``: ``/metrics`` renders it,
``gateway_values`` reads it as one number per family, and ``metric_names`` (what scenario
files may name, known without a running gateway) lists it.

Names: ``gateway_*`` for the gateway; the service's metrics as gauges named
``service_<name>`` (``service_quotes_served``); the feed's as gauges under their own
``feed_*`` names; the storage's as gauges under their own ``storage_*`` names
(``system.storage.metric_names()``); the alert notifier's as gauges under their own
``alerts_*`` names (``system.trading.alerts.metric_names()``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from system.gateway.fanout import FanoutCounters
from system.gateway.protocol import is_ticker
from system.health import HEALTH_CODES
from system.market.model import FEED_STATE_CODES, FeedState

if TYPE_CHECKING:
    from system.gateway.app import Gateway

_INVALID = re.compile(r"[^a-zA-Z0-9_]")

# One number, or one per value of the family's label.
Reading = float | Mapping[str, float]


def metric_name(name: str, prefix: str = "") -> str:
    """A valid Prometheus name for ``prefix + name`` (other characters become ``_``)."""
    cleaned = _INVALID.sub("_", prefix + name)
    return cleaned if not cleaned[:1].isdigit() else f"_{cleaned}"


@dataclass(frozen=True)
class Family:
    """One of the gateway's metric families and how to read it from a ``Gateway``."""

    name: str
    kind: Literal["counter", "gauge"]
    documentation: str
    read: Callable[[Gateway], Reading]
    label: str = ""  # set when ``read`` gives one number per label value
    # The family as one number (``gateway_values``); by default ``read`` summed over labels.
    total: Callable[[Gateway], float] | None = None

    def value(self, gateway: Gateway) -> float:
        if self.total is not None:
            return self.total(gateway)
        reading = self.read(gateway)
        return float(sum(reading.values()) if isinstance(reading, Mapping) else reading)

    def metric(self, gateway: Gateway) -> Metric:
        reading = self.read(gateway)
        labels = [self.label] if self.label else None
        family: CounterMetricFamily | GaugeMetricFamily
        if self.kind == "counter":
            family = CounterMetricFamily(self.name, self.documentation, labels=labels)
        else:
            family = GaugeMetricFamily(self.name, self.documentation, labels=labels)
        if isinstance(reading, Mapping):
            for value, number in reading.items():
                family.add_metric([value], number)
        else:
            family.add_metric([], reading)
        return family


def _counter(
    name: str, documentation: str, read: Callable[[Gateway], Reading], label: str = ""
) -> Family:
    return Family(name, "counter", documentation, read, label)


def _gauge(
    name: str,
    documentation: str,
    read: Callable[[Gateway], Reading],
    label: str = "",
    total: Callable[[Gateway], float] | None = None,
) -> Family:
    return Family(name, "gauge", documentation, read, label, total)


# A function called once, not a tuple written at module level: the readers reach into
# Gateway, whose module imports this one, and mypy types a function body only once that
# import cycle's attributes are known.
def _families() -> tuple[Family, ...]:
    return (
        _gauge("gateway_connections", "WebSocket clients connected now", lambda g: len(g.manager)),
        _counter(
            "gateway_connections_opened",
            "WebSocket clients ever connected",
            lambda g: g.manager.totals.connections,
        ),
        _counter(
            "gateway_messages_sent",
            "messages written to client sockets",
            lambda g: g.manager.totals.messages_sent,
        ),
        _counter(
            "gateway_messages_dropped",
            "messages dropped from full client queues (oldest first)",
            lambda g: g.manager.totals.messages_dropped,
        ),
        _counter(
            "gateway_messages_coalesced",
            "queued prices replaced by a newer price of the same ticker",
            lambda g: g.manager.totals.messages_coalesced,
        ),
        _counter(
            "gateway_clients_closed",
            "clients the gateway closed, by reason",
            lambda g: {
                "saturated": g.manager.totals.closed_saturated,
                "heartbeat": g.manager.totals.closed_stale,
            },
            "reason",
        ),
        _counter(
            "gateway_send_failures",
            "sends that failed (peer gone)",
            lambda g: g.manager.totals.send_failures,
        ),
        _gauge(
            "gateway_topic_subscribers",
            "clients subscribed to each topic",
            lambda g: g.manager.topics(),
            "topic",
        ),
        _gauge(
            "gateway_subscribed_tickers",
            "tickers with at least one subscriber",
            lambda g: sum(1 for topic in g.manager.topics() if is_ticker(topic)),
        ),
        _counter("gateway_pings_sent", "heartbeat pings queued", lambda g: g.heartbeat.pings_sent),
        _counter(
            "gateway_pongs_received",
            "heartbeat pongs received",
            lambda g: g.heartbeat.pongs_received,
        ),
        _counter(
            "gateway_price_updates_sent", "price updates broadcast", lambda g: g.prices.updates_sent
        ),
        _counter(
            "gateway_fallback_quotes",
            "REST fallback quotes served",
            lambda g: g.prices.fallback_quotes,
        ),
        _counter(
            "gateway_fallback_quote_failures",
            "REST fallback quotes failed",
            lambda g: g.prices.fallback_failures,
        ),
        _counter(
            "gateway_feed_refusals", "feed subscriptions refused", lambda g: g.prices.feed_refusals
        ),
        _gauge(
            "gateway_feed_subscriptions_owned",
            "feed subscriptions the gateway made and will release",
            lambda g: len(g.prices.owned),
        ),
        _counter("gateway_signals_published", "signals published", lambda g: g.signals.published),
        _counter(
            "gateway_client_errors",
            "client messages answered with an error",
            lambda g: g.dispatcher.errors_sent,
        ),
        _gauge(
            "gateway_feed_state",
            "1 for the realtime feed's current state",
            lambda g: {state: float(g.prices.state == state) for state in get_args(FeedState)},
            "state",
            # One-hot has no useful sum: the state's number, as ``feed_state`` gives it.
            total=lambda g: float(FEED_STATE_CODES[g.prices.state]),
        ),
        _gauge(
            "gateway_fanout_shared",
            "1 while signals are shared with the deployment's other gateways through Redis",
            lambda g: float(g.fanout is not None and g.fanout.state == "shared"),
        ),
        _counter(
            "gateway_fanout_signals_shared",
            "this gateway's signals published to the other gateways",
            lambda g: _fanout(g).shared,
        ),
        _counter(
            "gateway_fanout_signals_received",
            "other gateways' signals sent to this gateway's clients",
            lambda g: _fanout(g).received,
        ),
        _counter(
            "gateway_fanout_signals_not_shared",
            "this gateway's signals kept local: Redis was away",
            lambda g: _fanout(g).not_shared,
        ),
        _counter(
            "gateway_fanout_malformed",
            "messages on the Redis channel that were not signal envelopes",
            lambda g: _fanout(g).malformed,
        ),
        _counter(
            "gateway_fanout_outages",
            "times Redis went away and the gateway became local-only",
            lambda g: _fanout(g).outages,
        ),
        _gauge(
            "gateway_health_state",
            "the /health verdict: 0 healthy, 1 degraded, 2 unhealthy",
            lambda g: HEALTH_CODES[g.health().state],
        ),
    )


GATEWAY_FAMILIES = _families()


def _fanout(gateway: Gateway) -> FanoutCounters:
    """The fan-out's counters; all zero for a gateway that shares nothing."""
    return FanoutCounters() if gateway.fanout is None else gateway.fanout.counters


class GatewayCollector(Collector):
    """Reads one gateway's parts, its service's, its feed's, its storage's and its alert
    notifier's metrics on every scrape."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        for family in GATEWAY_FAMILIES:
            yield family.metric(self.gateway)
        yield from _gauges(self.gateway.service.metrics(), "service_", "trading service metric")
        feed = {
            (name if name.startswith("feed_") else f"feed_{name}"): value
            for name, value in self.gateway.feed.metrics().items()
        }
        yield from _gauges(feed, "", "realtime feed metric")
        if self.gateway.storage is not None:
            yield from _gauges(self.gateway.storage.metrics(), "", "storage metric")
        if self.gateway.alerts is not None:
            yield from _gauges(self.gateway.alerts.metrics(), "", "alert notifier metric")


def _gauges(values: Mapping[str, float], prefix: str, what: str) -> Iterator[Metric]:
    for name, value in sorted(values.items()):
        yield GaugeMetricFamily(metric_name(name, prefix), f"{what} {name}", value=float(value))


def build_registry(gateway: Gateway) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def metric_names() -> tuple[str, ...]:
    """The names ``gateway_values`` reports: the families of ``GATEWAY_FAMILIES``."""
    return tuple(family.name for family in GATEWAY_FAMILIES)


def gateway_values(gateway: Gateway) -> dict[str, float]:
    """The gateway's own metrics as one number per family: a labelled family is summed over
    its labels (``gateway_clients_closed``: closed for any reason), except the one-hot
    ``gateway_feed_state``, which becomes the state's number as ``feed_state`` gives it
    (``FEED_STATE_CODES``: 0 live … 4 stopped), so the two never disagree."""
    return {family.name: family.value(gateway) for family in GATEWAY_FAMILIES}
