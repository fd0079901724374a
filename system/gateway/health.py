"""``GET /health``: the broker's, the feed's and the gateway's own state, and one verdict.

Each part is healthy, degraded or unhealthy (``system.health.Health``); the verdict is the
worst of them, and the HTTP status follows it: **200** for healthy and degraded (the
gateway serves; look at ``reasons``), **503** for unhealthy (take it out of rotation).

- **broker** — ``TradingService.health()``, as the service judges it (``system.health``).
- **feed** — healthy while ``live``. Any other state (connecting, stalled, reconnecting,
  stopped) and a ticker the feed refused are *degraded*, never unhealthy: prices keep
  flowing from REST quotes, marked stale.
- **gateway** — unhealthy when its background tasks (heartbeats, feed sync, REST
  fallback) are not running; otherwise healthy.
- **storage** (when the system has a database) — ``Storage.health()``: unhealthy while
  PostgreSQL is unreachable or the write buffer is full, degraded while writes wait.
- **fanout** (when the gateway shares signals through Redis, ``system.gateway.fanout``) —
  ``mode`` is ``shared``, ``local-only`` or ``connecting``; degraded unless shared, never
  unhealthy: without Redis the gateway still serves its own clients.
- **trading** (when the system has a trading desk) — degraded while trading is halted (the
  kill switch, a loss limit, a stop condition), with the halt's reason; healthy otherwise.
  Never unhealthy: a halt is a deliberate, safe state, and a 503 would take the gateway —
  the dashboard and the API that release the halt — out of rotation
  (``system.gateway.kill_switch.trading_health``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from system.gateway.prices import QuoteSource
from system.health import Health, HealthState
from system.market.model import FeedStatus


class BrokerService(QuoteSource, Protocol):
    """What the gateway needs of ``TradingService``: quotes, health and metrics."""

    def health(self) -> Health: ...

    def metrics(self) -> dict[str, float]: ...


def feed_health(
    status: FeedStatus, now: float, *, refused: Mapping[str, str], fallback_interval_s: float
) -> Health:
    """The feed's part of the verdict (see the module docstring)."""
    reasons: list[str] = []
    if status.state != "live":
        detail = f" ({status.detail})" if status.detail else ""
        reasons.append(
            f"realtime feed {status.state} for {now - status.since:.1f} s{detail}; prices "
            f"come from REST quotes every {fallback_interval_s:g} s, marked stale"
        )
    for code, why in sorted(refused.items()):
        reasons.append(f"the feed refused {code} ({why}); its prices come from REST quotes")
    return Health("degraded", tuple(reasons)) if reasons else Health("healthy")


def gateway_health(*, running: bool, stopped_tasks: tuple[str, ...]) -> Health:
    if not running:
        return Health("unhealthy", ("the gateway is not started (or already stopped)",))
    if stopped_tasks:
        return Health(
            "unhealthy",
            (f"gateway background task(s) stopped: {', '.join(stopped_tasks)}; restart it",),
        )
    return Health("healthy")


@dataclass(frozen=True)
class GatewayHealth:
    broker: Health
    feed: Health
    gateway: Health
    feed_status: FeedStatus
    connections: int
    storage: Health | None = None
    trading: Health | None = None
    fanout: Health | None = None
    fanout_state: str | None = None  # shared, local-only or connecting

    @property
    def parts(self) -> tuple[Health, ...]:
        optional = (self.storage, self.trading, self.fanout)
        return (self.gateway, self.broker, self.feed, *(p for p in optional if p is not None))

    @property
    def overall(self) -> Health:
        """The verdict: the worst part's state, with every part's reasons in order."""
        return Health.worst(*self.parts)

    @property
    def state(self) -> HealthState:
        return self.overall.state

    @property
    def http_status(self) -> int:
        return 503 if self.state == "unhealthy" else 200

    def to_json(self) -> dict[str, Any]:
        status = self.feed_status
        overall = self.overall
        verdict: dict[str, Any] = {
            "state": overall.state,
            "reasons": list(overall.reasons),
            "gateway": _part(self.gateway, connections=self.connections),
            "broker": _part(self.broker),
            "feed": _part(
                self.feed,
                feed_state=status.state,
                since=status.since,
                reconnects=status.reconnects,
                subscriptions=list(status.subscriptions),
                last_message_at=status.last_message_at,
            ),
        }
        if self.storage is not None:
            verdict["storage"] = _part(self.storage)
        if self.trading is not None:
            verdict["trading"] = _part(self.trading)
        if self.fanout is not None:
            verdict["fanout"] = _part(self.fanout, mode=self.fanout_state)
        return verdict


def _part(health: Health, **details: Any) -> dict[str, Any]:
    return {"state": health.state, "reasons": list(health.reasons), **details}
