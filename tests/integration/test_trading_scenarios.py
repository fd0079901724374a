"""The shipped trading scenarios catch a weakened desk, each for the right reason.

(That the real system passes them is the scenarios tier's job.) One weakening goes through
the scenario's own settings, as a scenario can: no stop condition on consecutive failures.
The other takes out a protection no setting turns off, the last check before an order
leaves (``Desk.permit``), as a code change would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.result import ScenarioResult
from harness.runner import run_scenario
from harness.scenario import load_file
from system.broker import OrderRequest
from system.trading.desk import Desk
from system.trading.risk import ALLOWED, TradeLimits

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "trading"


def run_with(
    name: str, trading: dict[str, Any] | None = None, service: dict[str, Any] | None = None
) -> ScenarioResult:
    """``name`` with its desk's and its service's settings overridden."""
    scenario = load_file(SCENARIOS / name)
    update = {
        "trading": {**scenario.system.trading, **(trading or {})},
        "service": {**scenario.system.service, **(service or {})},
    }
    system = scenario.system.model_copy(update=update)
    return run_scenario(scenario.model_copy(update={"system": system}), name)


def failed(result: ScenarioResult) -> dict[str, str]:
    assert result.error is None, result.error
    return {check.description: check.observed for check in result.failed_checks}


def test_a_desk_without_a_failure_stop_is_caught_trading_on() -> None:
    problems = failed(
        run_with("consecutive-failures-halt.yaml", {"max_consecutive_failures": None})
    )
    assert problems["trading halts once"] == "desk_halts = 0 at t=600"
    refused = problems[
        "three refused orders in a row halt it; at most one more was already on its way"
    ]
    assert refused.endswith("in 0–600 s")
    assert int(refused.split()[0]) > 4


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


def test_a_service_that_resends_orders_of_unknown_outcome_is_caught_by_the_books() -> None:
    problems = failed(run_with("ambiguous-orders.yaml", service={"on_unknown_order": "resend"}))
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
