"""The closing-bet detector: one buy per code per KST day for a strong stock near its high
in the window before the close; silent outside the window and below the thresholds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

import pytest

from system.broker.clock import KST
from system.market import PriceUpdate
from system.trading.detectors import ClosingBetDetector, ClosingBetParams, Signal

CODE = "035720"
PREVIOUS_CLOSE = 10_000
OPEN = datetime(2026, 3, 2, 9, 0, tzinfo=KST)  # a Monday


def wall(at: float) -> datetime:
    """Loop time is seconds since 09:00 KST on the first day."""
    return OPEN + timedelta(seconds=at)


def at(hh: int, mm: int, ss: int = 0, *, day: int = 0) -> float:
    """The loop time of ``hh:mm:ss`` KST, ``day`` days after the first."""
    moment = datetime.combine(OPEN.date() + timedelta(days=day), time(hh, mm, ss), KST)
    return (moment - OPEN).total_seconds()


def update(
    price: int,
    when: float,
    *,
    volume: int = 1_000_000,
    code: str = CODE,
    previous_close: int = PREVIOUS_CLOSE,
    change_rate: float | None = None,
) -> PriceUpdate:
    change = price - previous_close
    rate = round(change / previous_close * 100, 2) if change_rate is None else change_rate
    return PriceUpdate(code, price, change, rate, volume, when)


def feed(detector: ClosingBetDetector, stream: Iterable[PriceUpdate]) -> list[Signal]:
    return [signal for u in stream for signal in detector.on_price(u)]


# Up 10 % by 10:30, a high of 11,100 at 14:00, still 11,050 (0.45 % under it) at 15:05.
MORNING = [
    update(10_500, at(9, 30), volume=200_000),
    update(11_000, at(10, 30), volume=400_000),
    update(11_100, at(14, 0), volume=700_000),
    update(11_000, at(14, 50), volume=800_000),
]


def test_a_strong_stock_near_its_high_in_the_window_fires_once_that_day() -> None:
    detector = ClosingBetDetector(wall)
    stream = [
        *MORNING,
        update(11_050, at(15, 5), volume=900_000),
        update(11_050, at(15, 6), volume=950_000),
        update(11_100, at(15, 10), volume=1_000_000),
        update(11_050, at(15, 15), volume=1_100_000),
    ]

    fired = [(u, s) for u in stream for s in detector.on_price(u)]

    assert len(fired) == 1
    trigger, signal = fired[0]
    assert trigger.at == at(15, 5)
    assert signal.at == at(15, 5)
    assert signal.code == CODE
    assert signal.side == "buy"
    assert signal.detector == "closing_bet"
    assert signal.limit_price == 11_060  # one 10-won tick above
    assert signal.strength == pytest.approx(10.5)
    assert "15:05:00 KST" in signal.reason
    assert "11,100" in signal.reason


@pytest.mark.parametrize(
    ("when", "fires"),
    [
        (at(14, 59, 59), False),
        (at(15, 0), True),
        (at(15, 19, 59), True),
        (at(15, 20), False),
        (at(15, 25), False),
    ],
)
def test_only_updates_inside_the_window_fire(when: float, fires: bool) -> None:
    detector = ClosingBetDetector(wall)
    feed(detector, [update(11_000, at(10, 0), volume=900_000)])

    signals = detector.on_price(update(11_000, when))

    assert len(signals) == int(fires)


@pytest.mark.parametrize(("rate", "fires"), [(4.99, False), (5.0, True), (5.01, True)])
def test_the_day_s_rise_must_reach_min_change_rate(rate: float, fires: bool) -> None:
    detector = ClosingBetDetector(wall)

    signals = detector.on_price(update(10_500, at(15, 5), change_rate=rate))

    assert len(signals) == int(fires)


@pytest.mark.parametrize(("price", "fires"), [(10_980, False), (10_990, True), (11_100, True)])
def test_price_must_be_within_near_high_of_the_day_s_high(price: int, fires: bool) -> None:
    # 1 % under 11,100 is 10,989: 10,990 is near enough, 10,980 (1.08 % under) is not.
    detector = ClosingBetDetector(wall)
    feed(detector, MORNING)

    signals = detector.on_price(update(price, at(15, 5)))

    assert len(signals) == int(fires)


@pytest.mark.parametrize(("volume", "fires"), [(499_999, False), (500_000, True)])
def test_day_volume_must_reach_min_volume(volume: int, fires: bool) -> None:
    detector = ClosingBetDetector(wall)

    signals = detector.on_price(update(11_000, at(15, 5), volume=volume))

    assert len(signals) == int(fires)


def test_a_miss_in_the_window_does_not_use_up_the_day() -> None:
    detector = ClosingBetDetector(wall)
    stream = [
        *MORNING,
        update(10_900, at(15, 2)),  # too far under the high
        update(11_000, at(15, 4), volume=100_000),  # too little volume
        update(11_050, at(15, 6)),
    ]

    assert [s.at for s in feed(detector, stream)] == [at(15, 6)]


def test_the_next_day_re_arms_and_forgets_yesterday_s_high() -> None:
    detector = ClosingBetDetector(wall)
    stream = [
        update(12_000, at(11, 0)),
        update(11_900, at(15, 5)),
        # Next day: yesterday's 12,000 is no longer the high to be near.
        update(11_000, at(10, 0, day=1)),
        update(11_000, at(15, 1, day=1)),
        update(11_000, at(15, 2, day=1)),
    ]

    assert [s.at for s in feed(detector, stream)] == [at(15, 5), at(15, 1, day=1)]


def test_codes_are_signalled_independently() -> None:
    detector = ClosingBetDetector(wall)
    stream = [
        update(11_000, at(15, 5), code="035720"),
        update(11_000, at(15, 5, 1), code="000660"),
        update(11_000, at(15, 6), code="035720"),
    ]

    assert [s.code for s in feed(detector, stream)] == ["035720", "000660"]


def test_an_update_older_than_the_last_one_is_ignored() -> None:
    detector = ClosingBetDetector(wall)
    feed(detector, [update(11_000, at(15, 25))])

    assert detector.on_price(update(11_000, at(15, 5))) == []


def test_the_wall_clock_may_be_in_any_zone() -> None:
    def utc_wall(at: float) -> datetime:
        return wall(at).astimezone(UTC)

    detector = ClosingBetDetector(utc_wall)

    assert [s.at for s in detector.on_price(update(11_000, at(15, 5)))] == [at(15, 5)]


def test_a_naive_wall_clock_is_refused_with_what_to_do() -> None:
    detector = ClosingBetDetector(lambda at: datetime(2026, 3, 2, 15, 5))

    with pytest.raises(ValueError, match="naive datetime; return an aware one"):
        detector.on_price(update(11_000, 0.0))


def test_the_limit_is_capped_at_the_upper_daily_limit_or_left_out() -> None:
    at_the_limit = update(13_000, at(15, 5))  # 10,000 × 1.3: the upper limit

    (capped,) = ClosingBetDetector(wall).on_price(at_the_limit)
    (market,) = ClosingBetDetector(wall, ClosingBetParams(limit_offset_ticks=None)).on_price(
        at_the_limit
    )
    (three_ticks,) = ClosingBetDetector(wall, ClosingBetParams(limit_offset_ticks=3)).on_price(
        update(19_990, at(15, 5), previous_close=18_000)
    )

    assert capped.limit_price == 13_000
    assert market.limit_price is None
    assert three_ticks.limit_price == 20_100  # 19,990 → 20,000 → 20,050 → 20,100


def test_the_same_updates_give_the_same_signal_ids() -> None:
    stream = [*MORNING, update(11_050, at(15, 5))]

    first = feed(ClosingBetDetector(wall), stream)
    second = feed(ClosingBetDetector(wall), stream)
    other_day = feed(ClosingBetDetector(wall), [update(11_050, at(15, 5, day=1))])

    assert len(first) == 1
    assert first == second
    assert first[0].signal_id != other_day[0].signal_id


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_start": time(15, 20), "window_end": time(15, 0)}, "window_start < window_end"),
        ({"window_end": time(15, 40)}, "window_end <= 15:30"),
        ({"near_high": 1.0}, "near_high"),
        ({"min_volume": -1}, "min_volume"),
        ({"limit_offset_ticks": -1}, "limit_offset_ticks"),
    ],
)
def test_nonsense_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClosingBetParams(**params)  # type: ignore[arg-type]
