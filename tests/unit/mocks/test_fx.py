"""The simulated FX venue: cross rates that agree, seeded paths, and mispricings.

The consistency claim is checked the way an arbitrageur would: converting around every
triangle of currencies at the quoted bid and ask, in both directions, at every step.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from mocks.fx import PAIR_NAMES, PAIRS, FxMarket, FxQuote, UnknownPair
from mocks.market import EventInThePast, Market
from mocks.market_events import MARKET_EVENT, MarketEvent, Mispricing

SEED = 11
STEPS = range(0, 600, 7)
CURRENCIES = ("KRW", "USD", "JPY", "EUR")


def mispricing(**fields: Any) -> MarketEvent:
    return MARKET_EVENT.validate_python({"kind": "mispricing", "pair": "EUR/JPY", **fields})


def convert(fx: FxMarket, source: str, target: str, step: int) -> float:
    """How much of ``target`` one ``source`` becomes at the venue's quotes (no fees)."""
    for pair in PAIRS:
        quote = fx.quote(pair.name, step)
        if (pair.base, pair.quote) == (source, target):
            return quote.bid  # sell the base
        if (pair.base, pair.quote) == (target, source):
            return 1 / quote.ask  # buy the base
    raise AssertionError(f"no pair between {source} and {target}")


def best_cycle(fx: FxMarket, step: int, home: str | None = None) -> tuple[float, str]:
    """The best return of any triangle at ``step`` (from ``home`` only, if given), and
    which one."""
    returns = []
    for a, b, c in itertools.permutations(CURRENCIES, 3):
        if home is not None and a != home:
            continue
        rate = convert(fx, a, b, step) * convert(fx, b, c, step) * convert(fx, c, a, step)
        returns.append((rate, f"{a}->{b}->{c}->{a}"))
    return max(returns)


def test_every_pair_of_four_currencies_is_listed_once() -> None:
    assert len(PAIRS) == 6
    pairs = {frozenset((pair.base, pair.quote)) for pair in PAIRS}
    assert pairs == {frozenset(two) for two in itertools.combinations(CURRENCIES, 2)}


@pytest.mark.parametrize("seed", [0, SEED, 2024])
def test_a_consistent_venue_has_no_triangle_that_returns_more_than_it_costs(seed: int) -> None:
    fx = FxMarket(seed)
    for step in STEPS:
        rate, cycle = best_cycle(fx, step)
        # At least the three half-spreads are lost, whichever way round.
        assert rate < 1 - 1e-4, (step, cycle, rate)


def test_the_mids_are_the_ratios_of_the_currencies_values() -> None:
    fx = FxMarket(SEED)
    for step in (0, 100, 599):
        via_krw = fx.mid("EUR/KRW", step) / fx.mid("JPY/KRW", step)
        assert fx.mid("EUR/JPY", step) == pytest.approx(via_krw, rel=1e-12)
        assert fx.mid("EUR/USD", step) * fx.mid("USD/JPY", step) == pytest.approx(
            fx.mid("EUR/JPY", step), rel=1e-12
        )


def test_quotes_straddle_the_mid_on_the_pairs_grid_with_the_spread_rounded_outwards() -> None:
    fx = FxMarket(SEED)
    for pair, step in itertools.product(PAIRS, STEPS):
        quote = fx.quote(pair.name, step)
        mid = fx.mid(pair.name, step)
        half = mid * pair.half_spread_bps / 10_000
        assert quote.bid <= mid - half < mid + half <= quote.ask
        for price in (quote.bid, quote.ask, quote.last):
            assert -Decimal(repr(price)).as_tuple().exponent <= pair.decimals  # type: ignore[operator]
        # Rounded outwards by less than one tick each side.
        tick = 10.0**-pair.decimals
        assert quote.ask - quote.bid < 2 * half + 2 * tick + 1e-9


def test_the_same_seed_gives_the_same_venue_and_another_seed_another() -> None:
    one, two, other = FxMarket(SEED), FxMarket(SEED), FxMarket(SEED + 1)
    # Asked in a different order, the answers do not change.
    late = [two.quote(name, 300) for name in reversed(PAIR_NAMES)]
    assert [one.quote(name, 300) for name in PAIR_NAMES] == late[::-1]
    assert one.quote("USD/KRW", 300) != other.quote("USD/KRW", 300)


def test_prices_move_from_step_to_step_and_stay_near_their_reference() -> None:
    fx = FxMarket(SEED)
    mids = [fx.mid("USD/KRW", step) for step in range(600)]
    assert len(set(mids)) == 600
    assert min(mids) > 1_200
    assert max(mids) < 1_550
    assert fx.mid("JPY/KRW", 0) == pytest.approx(9.2, rel=0.05)


def test_the_session_statistics_follow_the_mids() -> None:
    fx = FxMarket(SEED)
    quotes = [fx.quote("EUR/USD", step) for step in range(50)]
    lasts = [q.last for q in quotes]
    last = quotes[-1]
    assert (last.low, last.high) == (min(lasts), max(lasts))
    assert last.change == pytest.approx(last.last - quotes[0].last, abs=1e-9)
    assert all(b.volume > a.volume for a, b in itertools.pairwise(quotes))
    assert last.low <= last.vwap <= last.high


# -- mispricing ------------------------------------------------------------------------


def market_with(*events: MarketEvent, seed: int = SEED) -> Market:
    market = Market(seed)
    for event in events:
        market.inject(event, now=0)
    return market


def test_a_mispricing_moves_one_pair_for_its_window_and_nothing_else() -> None:
    calm = FxMarket(SEED)
    fx = market_with(mispricing(pct=1.5, at=100, **{"for": 60})).fx
    assert fx.quote("EUR/JPY", 99) == calm.quote("EUR/JPY", 99)
    for step in (160, 300):
        quote, undisturbed = fx.quote("EUR/JPY", step), calm.quote("EUR/JPY", step)
        assert (quote.bid, quote.ask) == (undisturbed.bid, undisturbed.ask)
        assert quote.high > undisturbed.high  # the session remembers the spike
    for step in (100, 130, 159):
        moved = fx.quote("EUR/JPY", step)
        assert moved.bid == pytest.approx(calm.quote("EUR/JPY", step).bid * 1.015, rel=1e-4)
        assert moved.ask == pytest.approx(calm.quote("EUR/JPY", step).ask * 1.015, rel=1e-4)
    for name in PAIR_NAMES[:-1]:
        assert [fx.quote(name, s) for s in STEPS] == [calm.quote(name, s) for s in STEPS]


def test_a_mispricing_opens_the_triangle_through_its_pair_and_only_while_it_lasts() -> None:
    fx = market_with(mispricing(pct=1.5, at=100, **{"for": 60})).fx
    # EUR/JPY too dear: buy EUR, sell it for yen, sell the yen.
    rate, cycle = best_cycle(fx, 120, home="KRW")
    assert (cycle, rate > 1.01) == ("KRW->EUR->JPY->KRW", True)
    assert best_cycle(fx, 120, home="USD")[1] == "USD->EUR->JPY->USD"
    assert best_cycle(fx, 99)[0] < 1
    assert best_cycle(fx, 160)[0] < 1


def test_a_mispricing_down_opens_the_other_direction() -> None:
    fx = market_with(mispricing(pct=-2, at=10)).fx
    rate, cycle = best_cycle(fx, 500, home="KRW")  # no 'for': until cleared
    assert (cycle, rate > 1.015) == ("KRW->JPY->EUR->KRW", True)


def test_mispricings_of_one_pair_compound_and_clearing_restores_every_step() -> None:
    market = market_with(mispricing(pct=1, at=10), mispricing(pct=1, at=20))
    calm = FxMarket(SEED)
    mid = calm.mid("EUR/JPY", 30)
    assert market.fx.quote("EUR/JPY", 30).last == pytest.approx(mid * 1.0201, rel=1e-5)
    market.events.clear()
    assert market.fx.quote("EUR/JPY", 30) == calm.quote("EUR/JPY", 30)


def test_the_broker_and_the_feed_markets_share_what_is_injected() -> None:
    broker = Market(SEED)
    feed = Market(SEED, events=broker.events)
    broker.inject(mispricing(pct=1.5), now=41.5)  # no 'at': from the next second
    stored = next(iter(broker.events))
    assert isinstance(stored, Mispricing)
    assert stored.at == 42
    assert feed.fx.quote("EUR/JPY", 42) == broker.fx.quote("EUR/JPY", 42)
    assert feed.fx.quote("EUR/JPY", 42) != FxMarket(SEED).quote("EUR/JPY", 42)


def test_a_pair_the_venue_does_not_list_is_refused_naming_the_listed_ones() -> None:
    with pytest.raises(UnknownPair) as raised:
        Market(SEED).inject(mispricing(pair="GBP/KRW", pct=1), now=0)
    assert "GBP/KRW is not listed" in str(raised.value)
    assert "EUR/JPY" in str(raised.value)


def test_a_mispricing_may_not_rewrite_quotes_already_sent() -> None:
    with pytest.raises(EventInThePast, match="mispricing of EUR/JPY at 3 s"):
        Market(SEED).inject(mispricing(pct=1, at=3), now=10)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"pct": 0}, "moves nothing"),
        ({"pct": 1, "pair": "eur/jpy"}, "pattern"),
        ({"pct": 1, "code": "005930"}, "Extra inputs"),
        ({"pct": 1, "for": 0}, "greater than or equal to 1"),
        ({}, "Field required"),
    ],
)
def test_a_nonsensical_mispricing_is_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        mispricing(**fields)


def test_an_fx_quote_is_a_plain_value() -> None:
    quote = FxMarket(SEED).quote("USD/JPY", 5)
    assert isinstance(quote, FxQuote)
    assert all(
        math.isfinite(value) for value in (quote.bid, quote.ask, quote.bid_qty, quote.ask_qty)
    )
