"""The triangular-arbitrage detector: cycles priced at the right side of each quote, fees
taken per leg, stale quotes left out, one opportunity when (and only when) the net edge
clears the minimum."""

from __future__ import annotations

import math

import pytest

from system.market import PriceUpdate
from system.trading.detectors import (
    Leg,
    Opportunity,
    RateQuote,
    TriangularArbitrageDetector,
    TriangularParams,
)

# KRW->USD->JPY->KRW: buy USD at 1,400 (ask), sell it for 150 JPY (bid), sell those for
# 9.40 KRW each (bid): 1 KRW → 150 × 9.40 / 1,400 = 1.00714 KRW before fees.
USD_KRW = RateQuote("USD/KRW", bid=1_399.0, ask=1_400.0, at=10.0)
USD_JPY = RateQuote("USD/JPY", bid=150.0, ask=150.02, at=10.2)
JPY_KRW = RateQuote("JPY/KRW", bid=9.40, ask=9.41, at=10.4)
GROSS = 150.0 * 9.40 / 1_400.0
NET = GROSS * (1 - 10 / 10_000) ** 3


def jpy_krw(bid: float, at: float = 10.4) -> RateQuote:
    return RateQuote("JPY/KRW", bid=bid, ask=bid + 0.01, at=at)


def test_the_quote_that_completes_a_profitable_cycle_reports_it_once() -> None:
    detector = TriangularArbitrageDetector()

    assert detector.on_rate(USD_KRW) == []
    assert detector.on_rate(USD_JPY) == []
    found = detector.on_rate(JPY_KRW)

    assert len(found) == 1
    (opportunity,) = found
    assert opportunity.cycle == "KRW->USD->JPY->KRW"
    assert opportunity.updated_pair == "JPY/KRW"
    assert opportunity.at == JPY_KRW.at
    assert opportunity.gross_rate == pytest.approx(GROSS)
    assert opportunity.net_rate == pytest.approx(NET)
    assert opportunity.allocated_capital == 1_000_000.0
    assert opportunity.est_profit == pytest.approx(1_000_000.0 * (NET - 1))
    assert opportunity.legs == (
        Leg("USD/KRW", "buy", 1_400.0, "KRW", "USD", 1 / 1_400.0),
        Leg("USD/JPY", "sell", 150.0, "USD", "JPY", 150.0),
        Leg("JPY/KRW", "sell", 9.40, "JPY", "KRW", 9.40),
    )


def test_the_reverse_cycle_pays_the_other_side_of_each_quote() -> None:
    # KRW->JPY->USD->KRW buys JPY at the JPY/KRW ask and USD at 150.02, sells USD at 1,399.
    detector = TriangularArbitrageDetector()
    detector.on_rate(USD_KRW)
    detector.on_rate(USD_JPY)
    cheap = jpy_krw(9.20, at=10.5)

    assert detector.on_rate(jpy_krw(9.31)) == []  # neither way pays at 9.31 / 9.32
    (found,) = detector.on_rate(cheap)

    assert found.cycle == "KRW->JPY->USD->KRW"
    assert found.legs[0] == Leg("JPY/KRW", "buy", cheap.ask, "KRW", "JPY", 1 / cheap.ask)
    assert found.legs[1] == Leg("USD/JPY", "buy", 150.02, "JPY", "USD", 1 / 150.02)
    assert found.legs[2] == Leg("USD/KRW", "sell", 1_399.0, "USD", "KRW", 1_399.0)
    assert found.net_rate == pytest.approx(1_399.0 / (cheap.ask * 150.02) * (1 - 0.001) ** 3)


def test_an_edge_the_fees_eat_is_not_an_opportunity() -> None:
    # Gross 1.002; three legs of 10 bp cost about 0.3 %.
    bid = 1.002 * 1_400.0 / 150.0
    quotes = [USD_KRW, USD_JPY, jpy_krw(bid)]

    with_fees = TriangularArbitrageDetector()
    free = TriangularArbitrageDetector(TriangularParams(fee_bps=0.0))

    assert [with_fees.on_rate(q) for q in quotes][-1] == []
    (found,) = [free.on_rate(q) for q in quotes][-1]
    assert found.gross_rate == pytest.approx(1.002)
    assert found.net_rate == pytest.approx(1.002)


def test_the_net_rate_must_clear_min_edge() -> None:
    quotes = [USD_KRW, USD_JPY, JPY_KRW]
    edge = NET - 1  # about 0.41 %

    demanding = TriangularArbitrageDetector(TriangularParams(min_edge=edge + 1e-6))
    modest = TriangularArbitrageDetector(TriangularParams(min_edge=edge - 1e-6))

    assert [demanding.on_rate(q) for q in quotes][-1] == []
    assert len([modest.on_rate(q) for q in quotes][-1]) == 1


def test_a_leg_quoted_longer_ago_than_max_age_s_is_stale() -> None:
    params = TriangularParams(max_age_s=2.0)
    old = RateQuote("USD/KRW", bid=1_399.0, ask=1_400.0, at=0.0)
    usd_jpy = RateQuote("USD/JPY", bid=150.0, ask=150.02, at=1.0)

    stale = TriangularArbitrageDetector(params)
    stale.on_rate(old)
    stale.on_rate(usd_jpy)
    fresh = TriangularArbitrageDetector(params)
    fresh.on_rate(old)
    fresh.on_rate(usd_jpy)

    assert stale.on_rate(jpy_krw(9.40, at=2.001)) == []
    assert len(fresh.on_rate(jpy_krw(9.40, at=2.0))) == 1


def test_now_passed_by_the_caller_ages_every_leg_including_the_update() -> None:
    detector = TriangularArbitrageDetector()
    detector.on_rate(RateQuote("USD/KRW", bid=1_399.0, ask=1_400.0, at=12.0))
    detector.on_rate(RateQuote("USD/JPY", bid=150.0, ask=150.02, at=12.0))

    assert detector.on_rate(jpy_krw(9.40, at=10.4), now=12.5) == []
    assert len(detector.on_rate(jpy_krw(9.40, at=10.6), now=12.5)) == 1


def test_a_quote_older_than_the_one_held_is_ignored() -> None:
    detector = TriangularArbitrageDetector()
    for quote in (USD_KRW, USD_JPY, JPY_KRW):
        detector.on_rate(quote)
    # At 1,406 neither way pays (forward 0.99984 net, reverse 0.995 gross).
    losing = RateQuote("USD/KRW", bid=1_405.0, ask=1_406.0, at=10.6)
    late_winner = RateQuote("USD/KRW", bid=1_399.0, ask=1_400.0, at=10.5)

    assert detector.on_rate(losing) == []
    assert detector.on_rate(late_winner) == []
    # The held quote is still the losing one: a new JPY quote prices against it.
    assert detector.on_rate(jpy_krw(9.40, at=10.7)) == []


def test_an_update_to_a_pair_outside_the_base_currency_prices_the_cycles_through_it() -> None:
    detector = TriangularArbitrageDetector()
    detector.on_rate(USD_KRW)
    detector.on_rate(JPY_KRW)

    (found,) = detector.on_rate(USD_JPY)

    assert found.cycle == "KRW->USD->JPY->KRW"
    assert found.updated_pair == "USD/JPY"


@pytest.mark.parametrize(
    ("eur_bid", "cycles"),
    [
        # 1,535 / (1,400 × 1.09) = 1.0059 gross, less than the JPY triangle's 1.0071.
        (1_535.0, ["KRW->USD->JPY->KRW", "KRW->USD->EUR->KRW"]),
        # 1,545 / (1,400 × 1.09) = 1.0125 gross, more.
        (1_545.0, ["KRW->USD->EUR->KRW", "KRW->USD->JPY->KRW"]),
    ],
)
def test_every_triangle_through_the_updated_pair_is_priced_best_first(
    eur_bid: float, cycles: list[str]
) -> None:
    # EUR makes a second triangle with KRW and USD: buy USD at 1,400, EUR with it at the
    # 1.0900 ask, sell EUR at the EUR/KRW bid.
    detector = TriangularArbitrageDetector()
    for quote in (
        USD_JPY,
        JPY_KRW,
        RateQuote("EUR/USD", bid=1.0890, ask=1.0900, at=10.1),
        RateQuote("EUR/KRW", bid=eur_bid, ask=eur_bid + 1, at=10.1),
        RateQuote("GBP/JPY", bid=190.0, ask=190.1, at=10.1),  # no GBP/KRW: no triangle
    ):
        detector.on_rate(quote)

    found = detector.on_rate(USD_KRW)

    assert [o.cycle for o in found] == cycles
    assert found[0].net_rate > found[1].net_rate
    (eur,) = [o for o in found if "EUR" in o.cycle]
    assert eur.gross_rate == pytest.approx(eur_bid / (1_400.0 * 1.0900))


def test_triangles_without_the_base_currency_are_not_traded() -> None:
    # The same three quotes, but the capital is in EUR: no triangle holds it.
    detector = TriangularArbitrageDetector(TriangularParams(base_currency="EUR"))

    assert [detector.on_rate(q) for q in (USD_KRW, USD_JPY, JPY_KRW)] == [[], [], []]


def test_the_same_quotes_give_the_same_opportunity_ids() -> None:
    def run() -> tuple[list[Opportunity], TriangularArbitrageDetector]:
        detector = TriangularArbitrageDetector()
        return [o for q in (USD_KRW, USD_JPY, JPY_KRW) for o in detector.on_rate(q)], detector

    first, detector = run()
    second, _ = run()
    later = detector.on_rate(jpy_krw(9.40, at=10.8))

    assert len(first) == 1
    assert first == second
    assert first[0].opportunity_id == second[0].opportunity_id
    assert len(later) == 1
    assert later[0].opportunity_id != first[0].opportunity_id


def test_it_watches_no_stocks() -> None:
    detector = TriangularArbitrageDetector()

    assert detector.on_price(PriceUpdate("005930", 71_900, 400, 0.56, 1_000, 10.0)) == []


@pytest.mark.parametrize(
    ("pair", "bid", "ask", "message"),
    [
        ("USDKRW", 1.0, 1.0, "not BASE/QUOTE"),
        ("USD/USD", 1.0, 1.0, "not BASE/QUOTE"),
        ("USD/KRW/JPY", 1.0, 1.0, "not BASE/QUOTE"),
        ("USD/KRW", 0.0, 1.0, "finite and positive"),
        ("USD/KRW", math.nan, 1.0, "finite and positive"),
        ("USD/KRW", 1_400.0, 1_399.0, "crossed quote"),
    ],
)
def test_a_quote_that_makes_no_sense_is_refused(
    pair: str, bid: float, ask: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RateQuote(pair, bid, ask, at=0.0)


def test_an_opportunity_is_a_plain_frozen_record() -> None:
    detector = TriangularArbitrageDetector()
    for quote in (USD_KRW, USD_JPY):
        detector.on_rate(quote)
    (found,) = detector.on_rate(JPY_KRW)

    assert isinstance(found, Opportunity)
    with pytest.raises(AttributeError):
        found.net_rate = 2.0  # type: ignore[misc]
