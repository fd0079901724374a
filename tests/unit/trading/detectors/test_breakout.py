"""The channel breakout: once per break of a full channel, re-armed inside it."""

from __future__ import annotations

import pytest

from system.market import PriceUpdate
from system.trading.detectors import BreakoutDetector, BreakoutParams

CODE = "005930"


def feed(detector: BreakoutDetector, prices: list[int], start: float = 0.0) -> list[float]:
    """The loop times the detector signalled at, one price a second from ``start``."""
    fired: list[float] = []
    for i, price in enumerate(prices):
        at = start + i
        for signal in detector.on_price(PriceUpdate(CODE, price, 0, 0.0, 1, at)):
            assert (signal.code, signal.side, signal.limit_price) == (CODE, "buy", None)
            fired.append(signal.at)
    return fired


def detector() -> BreakoutDetector:
    return BreakoutDetector(BreakoutParams(window_s=10, min_break=0.001))


def test_a_break_of_a_full_channel_fires_once_until_price_comes_back_inside() -> None:
    d = detector()
    channel = [70_000] * 11  # t=0..10: the channel spans its whole window
    up = [70_100, 70_200, 70_300]  # t=11..13: one breakout, not three
    back = [70_000]  # t=14: inside again, re-armed
    again = [70_400]  # t=15: a new breakout of the channel that now holds 70,300
    assert feed(d, channel + up + back + again) == [11.0, 15.0]


def test_no_signal_before_the_channel_spans_its_window() -> None:
    d = detector()
    assert feed(d, [70_000] * 5 + [75_000]) == []


@pytest.mark.parametrize(("price", "fires"), [(70_070, True), (70_060, False)])
def test_the_break_must_clear_the_high_by_min_break(price: int, fires: bool) -> None:
    d = detector()
    fired = feed(d, [70_000] * 11 + [price])
    assert fired == ([11.0] if fires else [])


def test_the_same_prices_give_the_same_ids_and_older_updates_are_ignored() -> None:
    prices = [70_000] * 11 + [70_100]
    a, b = detector(), detector()
    ids = [
        [
            s.signal_id
            for i, p in enumerate(prices)
            for s in d.on_price(PriceUpdate(CODE, p, 0, 0.0, 1, float(i)))
        ]
        for d in (a, b)
    ]
    assert ids[0] == ids[1]
    assert len(ids[0]) == 1
    assert a.on_price(PriceUpdate(CODE, 90_000, 0, 0.0, 1, 3.0)) == []


def test_nonsense_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        BreakoutParams(window_s=0)
    with pytest.raises(ValueError, match="min_break"):
        BreakoutParams(min_break=-0.1)
