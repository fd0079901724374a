"""The shipped trading scenarios catch a weakened desk, each for the right reason.

(That the real system passes them is the scenarios tier's job.) One weakening goes through
the scenario's own settings, as a scenario can: no stop condition on consecutive failures.
The other takes out a protection no setting turns off, the last check before an order
leaves (``Desk.permit``), as a code change would. The triangular mispricing is caught with
a desk that never prices the rates, one that records an edge at every sighting, and with a
weakened world: a simulator whose mispricing never reaches the wire. The alert webhook
down is caught with a notifier that never retries (a setting) and a desk that waits for its
alerts to be delivered before it takes the next price (a code change).
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from harness.result import ScenarioResult
from harness.runner import Options, run_scenario
from harness.scenario import load_file
from mocks.broker.config import Api
from mocks.fx import FxMarket
from mocks.market_events import UNDISTURBED, Effect
from system.broker import OrderRequest
from system.market import PriceUpdate, RateQuote
from system.trading.alerts import Alert, AlertNotifier
from system.trading.desk import Desk
from system.trading.detectors import Opportunity
from system.trading.opportunities import OpenOpportunities
from system.trading.risk import ALLOWED, RiskGate, TradeLimits

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "trading"


def run_with(
    name: str,
    trading: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    alerts: dict[str, Any] | None = None,
    broker: Api | None = None,
) -> ScenarioResult:
    """``name`` with its desk's, its service's and its alert notifier's settings overridden."""
    scenario = load_file(SCENARIOS / name)
    update = {
        "trading": {**scenario.system.trading, **(trading or {})},
        "service": {**scenario.system.service, **(service or {})},
        "alerts": {**scenario.system.alerts, **(alerts or {})},
    }
    system = scenario.system.model_copy(update=update)
    return run_scenario(
        scenario.model_copy(update={"system": system}), name, Options(broker=broker)
    )


def failed(result: ScenarioResult) -> dict[str, str]:
    assert result.error is None, result.error
    return {check.description: check.observed for check in result.failed_checks}


def test_a_desk_without_a_failure_stop_is_caught_trading_on() -> None:
    problems = failed(
        run_with("consecutive-failures-halt.yaml", {"max_consecutive_failures": None})
    )
    assert problems["trading halts once"] == "desk_halts = 0 at t=600"
    refused = problems[
        "three refused orders in a row halt it; at most two more were already on their way"
    ]
    assert refused.endswith("in 0–600 s")
    assert int(refused.split()[0]) > 5


def test_a_desk_that_sends_what_it_decided_before_a_halt_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never_hold_back(self: Desk, order: OrderRequest) -> str | None:
        return None

    monkeypatch.setattr(Desk, "permit", never_hold_back)
    problems = failed(run_with("kill-switch-in-token-storm.yaml"))
    assert "no order reaches the broker after the press" in problems
    assert problems["orders queued for a token were held back when it came"] == (
        "desk_orders_blocked = 0 at t=600"
    )
    halted = problems[
        "no orders while halted: none reached the broker between a halt and its release"
    ]
    assert halted.startswith("order during a manual halt (")


@pytest.mark.parametrize("broker", ["kis", "kiwoom"])
def test_a_service_that_resends_orders_of_unknown_outcome_is_caught_by_the_books(
    broker: Api,
) -> None:
    problems = failed(
        run_with("ambiguous-orders.yaml", service={"on_unknown_order": "resend"}, broker=broker)
    )
    placed_once = problems[
        "orders placed once: every broker order is one the system knows, none twice"
    ]
    assert placed_once.startswith("placed but unknown to the system (")


def test_a_desk_that_ignores_its_trade_limits_is_caught_by_the_books(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TradeLimits, "check", lambda self, code, value: ALLOWED)
    problems = failed(run_with("exposure-under-a-burst.yaml"))
    limits = problems[
        "limits never exceeded: loss per day and in all, money per stock, stocks held"
    ]
    assert "too many stocks held at once" in limits
    assert "never more than three trades open" in problems


def test_a_desk_blind_to_late_prices_is_caught_trading_on_them() -> None:
    problems = failed(run_with("source-latency-halt.yaml", {"max_source_latency_s": None}))
    assert problems["trading halts once, for the late prices"] == "desk_halts = 0 at t=400"
    assert "no order after the prices turned late" in problems


def test_a_desk_that_waits_for_a_loss_to_be_realised_is_caught_past_the_daily_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No marking to market: the stop-loss sales go out on the crash and realise the loss.
    monkeypatch.setattr(RiskGate, "mark_to_market", lambda self, unrealised, day, at: None)
    problems = failed(run_with("daily-loss-limit-halt.yaml"))
    assert problems["no stop-loss sale goes out through the halt"] == "desk_exits = 2 at t=400"
    limits = problems[
        "limits never exceeded: loss per day and in all, money per stock, stocks held"
    ]
    assert "daily loss past its limit" in limits


def test_a_desk_that_marks_open_positions_but_forgets_realised_losses_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unrealised_only(self: RiskGate, unrealised: int, *, day: date, at: float) -> None:
        # Shifted so the guard's realised loss cancels out: only open positions count.
        self.loss_limits.mark(unrealised - self.loss_limits.cumulative_pnl, day, at)

    monkeypatch.setattr(RiskGate, "mark_to_market", unrealised_only)
    problems = failed(run_with("cumulative-loss-limit-halt.yaml"))
    # The slide's stop-loss sale goes out and realises the loss past the limit; only then
    # does the guard halt.
    assert problems["two trades stopped out before the slide, none after"] == (
        "desk_exits = 3 at t=600"
    )
    limits = problems[
        "limits never exceeded: loss per day and in all, money per stock, stocks held"
    ]
    assert "cumulative loss past its limit" in limits


FOUND = "the mispricing is found within two seconds"
OPEN = "while it lasts, its cycle stays open"
ONCE = "recorded once, and nothing new after the correction"


def test_a_desk_that_never_feeds_rates_to_its_detectors_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ignore(self: Desk, quote: RateQuote) -> None:
        return None

    monkeypatch.setattr(Desk, "on_rate", ignore)
    problems = failed(run_with("triangular-mispricing.yaml"))
    assert problems[FOUND] == "desk_opportunities = 0 at t=302"
    assert problems[OPEN] == "desk_opportunities_open = 0 at t=355"
    assert problems[ONCE] == "desk_opportunities = 0 at t=480"
    assert "a consistent market has no arbitrage" not in problems


def test_a_mispricing_that_never_reaches_the_wire_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def undisturbed(self: FxMarket, name: str, step: int) -> Effect:
        return UNDISTURBED

    monkeypatch.setattr(FxMarket, "effect", undisturbed)
    problems = failed(run_with("triangular-mispricing.yaml"))
    assert set(problems) == {FOUND, OPEN, ONCE}


def test_a_desk_that_records_every_sighting_is_caught_recording_one_edge_many_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def every(
        self: OpenOpportunities, detector: str, pair: str, found: list[Opportunity]
    ) -> list[Opportunity]:
        return list(found)

    monkeypatch.setattr(OpenOpportunities, "update", every)
    problems = failed(run_with("triangular-mispricing.yaml"))
    observed = problems[ONCE]
    assert observed.startswith("desk_opportunities = ")
    # Three pairs of the cycle quoted every second for a minute: about 180 sightings.
    assert int(observed.split()[2]) > 100


def test_a_notifier_that_never_retries_is_caught_losing_the_halt_alert() -> None:
    problems = failed(run_with("alert-webhook-down.yaml", alerts={"max_attempts": 1}))
    assert problems["no alert is given up"] == "alerts_failed = 1 at t=600"
    assert problems["the delivery is retried while the webhook is down"] == (
        "alerts_retried = 0 at t=185"
    )
    assert problems["the halt alert reaches the webhook within a minute of it coming back"] == (
        "0 in 190–250 s"
    )
    assert problems["it reaches the webhook once"] == "0 in 0–600 s"
    # Trading itself was never at stake.
    assert "three refused orders in a row halt trading, once" not in problems
    assert "the desk goes on reading prices while the alert cannot be delivered" not in problems


def test_a_desk_that_waits_for_its_alerts_is_caught_holding_up_prices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The weakening: after each price the desk waits until the alerts it raised are with
    # the webhook, as a desk that awaited the POST inline would.
    notifiers: set[AlertNotifier] = set()
    notify, handle = AlertNotifier.notify, Desk._handle

    def noted(self: AlertNotifier, alert: Alert) -> None:
        notifiers.add(self)
        notify(self, alert)

    async def handle_then_wait_for_alerts(self: Desk, update: PriceUpdate) -> None:
        await handle(self, update)
        while True:  # the notifier offers no event to wait on: look every tenth of a second
            if not any(notifier.metrics()["alerts_pending"] for notifier in notifiers):
                return
            await asyncio.sleep(0.1)

    monkeypatch.setattr(AlertNotifier, "notify", noted)
    monkeypatch.setattr(Desk, "_handle", handle_then_wait_for_alerts)
    problems = failed(run_with("alert-webhook-down.yaml"))
    held_up = problems["the desk goes on reading prices while the alert cannot be delivered"]
    assert held_up.startswith("desk_updates = ")
    assert int(held_up.split()[2]) < 1100  # stuck since the halt, about 127 s in
    # The alert itself still went out, retried and delivered once: only the desk suffered.
    assert "it reaches the webhook once" not in problems
    assert "no alert is given up" not in problems
