"""A ``mispricing`` market step: how it loads, what the runner injects for it, and the
mistakes the loader refuses."""

from __future__ import annotations

import pytest

from harness.runner import market_event
from harness.scenario import load_text
from harness.scenario.model import metric_names
from tests.unit.harness.test_scenario_loader import only_problem

NEEDS = "needs: [broker, feed, trading]\n"


def test_a_mispricing_loads_with_its_window_and_is_injected_with_its_pair() -> None:
    scenario = load_text(
        "name: x\nduration: 600\n" + NEEDS + "timeline:\n"
        "  - {name: off, at: 300, for: 60, market: {kind: mispricing, pair: EUR/JPY, pct: 1.5}}\n"
        "  - {name: on, at: 400, market: {kind: mispricing, pair: USD/KRW, pct: -2}}\n"
    )
    window, endless = scenario.market_moves
    assert (window.over_at(600), endless.over_at(600)) == (360, 600)
    assert market_event(window) == {
        "kind": "mispricing",
        "pair": "EUR/JPY",
        "at": 300,
        "pct": 1.5,
        "for": 60,
    }
    assert market_event(endless) == {"kind": "mispricing", "pair": "USD/KRW", "at": 400, "pct": -2}
    gap = load_text(
        "name: x\nduration: 60\ntimeline:\n"
        "  - {at: 10, market: {kind: gap, code: '005930', pct: -8}}\n"
    ).timeline[0]
    assert market_event(gap) == {"kind": "gap", "code": "005930", "at": 10, "pct": -8}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        pytest.param(
            "{at: 10, market: {kind: mispricing, pair: EUR/JPY}}",
            "a mispricing needs 'pct'",
            id="a-mispricing-needs-pct",
        ),
        pytest.param(
            "{at: 10, market: {kind: mispricing, code: '005930', pct: 1}}",
            "a mispricing moves an FX pair: give 'pair' (not 'code')",
            id="a-mispricing-takes-a-pair",
        ),
        pytest.param(
            "{at: 10, market: {kind: mispricing, pair: GBP/KRW, pct: 1}}",
            "pair 'GBP/KRW' is not listed on the simulated FX venue; listed: USD/KRW",
            id="only-listed-pairs",
        ),
        pytest.param(
            "{at: 10, market: {kind: gap, pair: EUR/JPY, pct: 1}}",
            "a gap moves a stock: give 'code' (not 'pair')",
            id="a-gap-takes-a-code",
        ),
        pytest.param(
            "{at: 10, market: {kind: vi}}",
            "a vi moves a stock: give 'code'",
            id="a-vi-takes-a-code",
        ),
    ],
)
def test_a_bad_mispricing_step_is_refused(step: str, message: str) -> None:
    problem = only_problem(f"name: x\nduration: 60\n{NEEDS}timeline:\n  - {step}\n")
    assert message in problem.message


def test_a_mispricing_needs_the_feed_that_serves_the_pairs() -> None:
    problem = only_problem(
        "name: x\nduration: 60\ntimeline:\n"
        "  - {name: off, at: 10, market: {kind: mispricing, pair: EUR/JPY, pct: 1}}\n"
    )
    assert problem.message == (
        "timeline.0.market.pair: step 'off' misprices an FX pair, whose quotes the feed "
        "serves; add feed to 'needs'"
    )


def test_the_rate_path_metrics_may_be_named() -> None:
    names = set(metric_names())
    assert {"rates_quotes", "rates_malformed_messages", "rates_state"} <= names
    assert {"desk_opportunities", "desk_opportunities_open", "desk_rates"} <= names
