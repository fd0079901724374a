"""The VCP breakout detector on constructed price paths: one signal at the breakout, none
on the near misses, re-arming only on a new base, determinism."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from system.market import PriceUpdate
from system.trading.detectors import Signal, VcpBreakoutDetector, VcpParams

CODE = "005930"
BAR_S = 60.0
PREVIOUS_CLOSE = 9_000

# A base of three contractions on one-minute bars, ticks of 10 won: from a first low of
# 9,500 up to 10,000, then 10,000 → 9,000 (10 %), 9,900 → 9,400 (5.1 %), 9,800 → 9,600
# (2.0 %), and back up towards the pivot, 9,800 (the last contraction's high).
BASE = (9_500, 10_000, 9_000, 9_900, 9_400, 9_800, 9_600)
PIVOT = 9_800


def walk(*points: int, step: int = 100) -> list[int]:
    """Prices from each point to the next in steps of ``step``, joints not repeated."""
    prices = [points[0]]
    for target in points[1:]:
        while prices[-1] != target:
            move = min(step, abs(target - prices[-1]))
            prices.append(prices[-1] + move if target > prices[-1] else prices[-1] - move)
    return prices


def updates(
    prices: Iterable[int],
    *,
    start_bar: int = 0,
    code: str = CODE,
    volumes: Iterable[int] | None = None,
) -> Iterator[PriceUpdate]:
    """One update per bar, in the middle of it; day volume grows by ``volumes`` (1,000 a bar
    if not given)."""
    bar_volumes = iter(volumes) if volumes is not None else None
    accumulated = 100_000
    for bar, price in enumerate(prices, start=start_bar):
        accumulated += next(bar_volumes) if bar_volumes is not None else 1_000
        yield update(price, at=bar * BAR_S + BAR_S / 2, code=code, volume=accumulated)


def update(
    price: int, *, at: float, code: str = CODE, volume: int = 100_000, source: str = "feed"
) -> PriceUpdate:
    change = price - PREVIOUS_CLOSE
    return PriceUpdate(
        code=code,
        price=price,
        change=change,
        change_rate=round(change / PREVIOUS_CLOSE * 100, 2),
        volume=volume,
        at=at,
        source="rest" if source == "rest" else "feed",
    )


def feed(detector: VcpBreakoutDetector, stream: Iterable[PriceUpdate]) -> list[Signal]:
    return [signal for u in stream for signal in detector.on_price(u)]


def fired_at(detector: VcpBreakoutDetector, stream: Iterable[PriceUpdate]) -> list[int]:
    """The prices of the updates that produced a signal."""
    return [u.price for u in stream if detector.on_price(u)]


def test_the_breakout_above_the_pivot_fires_once_on_the_update_that_makes_it() -> None:
    detector = VcpBreakoutDetector()
    prices = [*walk(*BASE, PIVOT - 10, PIVOT), PIVOT + 10, 9_900, 10_000]
    stream = list(updates(prices))

    signals = []
    for u in stream:
        for signal in detector.on_price(u):
            signals.append((u, signal))

    assert len(signals) == 1
    breakout, signal = signals[0]
    assert breakout.price == PIVOT + 10
    assert signal.at == breakout.at
    assert signal.code == CODE
    assert signal.side == "buy"
    assert signal.detector == "vcp"
    assert signal.limit_price == 10_090  # 9,800 × 1.03 = 10,094, down to the 10-won grid
    assert signal.strength == pytest.approx(1 - (200 / 9_800) / (1_000 / 10_000))
    assert "pivot 9,800" in signal.reason
    assert "10.0% → 5.1% → 2.0%" in signal.reason


def test_one_tick_below_or_at_the_pivot_is_no_breakout() -> None:
    detector = VcpBreakoutDetector()
    prices = [*walk(*BASE, PIVOT - 10), PIVOT, PIVOT - 10, PIVOT]

    assert feed(detector, updates(prices)) == []


def test_the_breakout_is_seen_inside_the_bar_not_at_its_close() -> None:
    detector = VcpBreakoutDetector()
    prior = walk(*BASE)
    stream = list(updates(prior))
    last_bar = len(prior)
    # Within one bar: up off the low (confirming the last trough), then through the pivot.
    ticks = [9_650, 9_750, PIVOT, PIVOT + 10, PIVOT + 20]
    stream += [
        update(price, at=last_bar * BAR_S + 1 + i, volume=200_000 + i)
        for i, price in enumerate(ticks)
    ]

    assert fired_at(detector, stream) == [PIVOT + 10]


def test_contractions_that_do_not_shrink_do_not_fire() -> None:
    # 10 %, then 3.0 %, then 3.9 %: the last pullback is deeper than the one before.
    not_shrinking = (9_500, 10_000, 9_000, 9_900, 9_600, 9_800, 9_420)
    shrinking = (9_500, 10_000, 9_000, 9_900, 9_600, 9_800, 9_700)

    silent = VcpBreakoutDetector()
    loud = VcpBreakoutDetector()

    assert fired_at(silent, updates(walk(*not_shrinking, PIVOT + 10))) == []
    assert fired_at(loud, updates(walk(*shrinking, PIVOT + 10))) == [PIVOT + 10]


def test_two_contractions_are_not_a_base_of_three() -> None:
    two = (9_500, 9_900, 9_400, 9_800, 9_600)

    assert feed(VcpBreakoutDetector(), updates(walk(*two, PIVOT + 10))) == []
    params = VcpParams(contractions=2)
    assert fired_at(VcpBreakoutDetector(params), updates(walk(*two, PIVOT + 10))) == [PIVOT + 10]


def test_a_first_pullback_deeper_than_max_first_depth_is_a_collapse_not_a_base() -> None:
    # 10,000 → 7,900 is 21 %.
    deep = (7_500, 10_000, 7_900, 9_900, 9_400, 9_800, 9_600)

    assert feed(VcpBreakoutDetector(), updates(walk(*deep, PIVOT + 10))) == []
    lenient = VcpBreakoutDetector(VcpParams(max_first_depth=0.25))
    assert fired_at(lenient, updates(walk(*deep, PIVOT + 10))) == [PIVOT + 10]


def test_a_last_pullback_wider_than_max_last_depth_is_not_tight_enough() -> None:
    # 20 %, 12.1 %, then 9,800 → 9,200: 6.1 %.
    loose = (7_500, 10_000, 8_000, 9_900, 8_700, 9_800, 9_200)

    assert feed(VcpBreakoutDetector(), updates(walk(*loose, PIVOT + 10))) == []
    lenient = VcpBreakoutDetector(VcpParams(max_last_depth=0.07))
    assert fired_at(lenient, updates(walk(*loose, PIVOT + 10))) == [PIVOT + 10]


def test_wiggles_smaller_than_swing_pct_are_not_contractions() -> None:
    # The "last contraction" 9,800 → 9,720 is 0.8 %, under the 1 % that makes a swing: the
    # zigzag sees 9,900 → 9,400 as the last one, and 9,810 is below its peak.
    small = (9_500, 10_000, 9_000, 9_900, 9_400, 9_800, 9_720)

    assert feed(VcpBreakoutDetector(), updates([*walk(*small, step=20), PIVOT + 10])) == []
    fine = VcpBreakoutDetector(VcpParams(swing_pct=0.005))
    assert fired_at(fine, updates(walk(*small, PIVOT + 10, step=20))) == [PIVOT + 10]


def test_a_first_bar_that_holds_both_extremes_does_not_say_which_came_first() -> None:
    # Bar 0 trades 10,000 and 9,000: peak then trough, or trough then peak? Unknown, so it
    # is no contraction; the base lacks its first one.
    first_bar = [update(10_000, at=1.0), update(9_000, at=2.0)]
    rest = list(updates(walk(9_000, *BASE[3:], PIVOT + 10), start_bar=1))
    ordered = list(updates(walk(*BASE, PIVOT + 10)))

    assert feed(VcpBreakoutDetector(), [*first_bar, *rest]) == []
    assert len(feed(VcpBreakoutDetector(), ordered)) == 1


def test_a_base_older_than_max_base_bars_is_not_a_base() -> None:
    prices = walk(*BASE, PIVOT + 10)
    span = len(prices) - 1 - prices.index(10_000)  # bars from the first peak to the breakout
    assert span == 33

    assert feed(VcpBreakoutDetector(VcpParams(max_base_bars=span - 1)), updates(prices)) == []
    window = VcpBreakoutDetector(VcpParams(max_base_bars=span))
    assert fired_at(window, updates(prices)) == [PIVOT + 10]


@pytest.mark.parametrize(
    "low",
    [
        9_760,  # 0.9 % under the breakout's high: not a swing, the same leg goes on
        # 1.4 %: a swing, and with the base's last two a shrinking triple (5.1 %, 2.0 %,
        # 1.4 %) whose pivot is 9,850; but it began before the breakout, so it is spent.
        9_710,
    ],
)
def test_a_failed_breakout_that_crosses_the_pivot_again_stays_silent(low: int) -> None:
    detector = VcpBreakoutDetector()
    prices = walk(*BASE, PIVOT + 50, low, PIVOT + 60, PIVOT + 100)

    assert fired_at(detector, updates(prices)) == [PIVOT + 50]


def test_after_a_breakout_only_a_new_base_re_arms_the_detector() -> None:
    detector = VcpBreakoutDetector()
    # Breakout, a run to 10,200, then a new base: 10,200 → 9,400 (7.8 %), 10,000 → 9,600
    # (4 %), 9,900 → 9,750 (1.5 %), and a breakout above its pivot, 9,900.
    prices = walk(*BASE, 10_200, 9_400, 10_000, 9_600, 9_900, 9_750, 9_910, step=50)

    assert fired_at(detector, updates(prices)) == [PIVOT + 50, 9_910]


def test_a_breakout_beyond_the_buy_zone_is_not_chased_and_spends_the_base() -> None:
    detector = VcpBreakoutDetector()
    # 9,800 × 1.03 = 10,094: a jump from 9,700 to 10,100 is past it; the return into the
    # zone (10,050, not a swing) is the same base, already spent.
    prices = [*walk(*BASE, 9_700), 10_100, 10_050, 10_080]

    assert fired_at(detector, updates(prices)) == []
    at_the_edge = [*walk(*BASE, 9_700), 10_090]
    assert fired_at(VcpBreakoutDetector(), updates(at_the_edge)) == [10_090]


def test_the_limit_price_is_capped_at_the_upper_daily_limit() -> None:
    detector = VcpBreakoutDetector()
    stream = list(updates(walk(*BASE, PIVOT + 10)))
    # Yesterday's close 7,700: the upper limit is 7,700 × 1.3 = 10,010.
    last = stream[-1]
    stream[-1] = PriceUpdate(
        code=last.code,
        price=last.price,
        change=last.price - 7_700,
        change_rate=27.4,
        volume=last.volume,
        at=last.at,
    )

    (signal,) = feed(detector, stream)

    assert signal.limit_price == 10_010


def test_volume_that_does_not_dry_up_blocks_the_signal_when_asked_to() -> None:
    prices = walk(*BASE, PIVOT + 10)
    # Bars 5..15 are the first contraction (10,000 → 9,000), 33..35 the last (9,800 →
    # 9,600); from bar 30 on (after the second trough) the stock trades 600 shares a bar.
    assert (prices[5], prices[15], prices[33], prices[35]) == (10_000, 9_000, 9_800, 9_600)
    steady = [1_000] * len(prices)
    drying = [1_000 if i < 30 else 600 for i in range(len(prices))]
    params = VcpParams(volume_dry_up=0.7)

    assert feed(VcpBreakoutDetector(), updates(prices, volumes=steady)) != []
    assert feed(VcpBreakoutDetector(params), updates(prices, volumes=steady)) == []
    signals = feed(VcpBreakoutDetector(params), updates(prices, volumes=drying))
    assert len(signals) == 1
    assert "volume 600/bar in the last contraction vs 1,000 in the first" in signals[0].reason


def test_rest_updates_count_as_prices() -> None:
    detector = VcpBreakoutDetector()
    stream = list(updates(walk(*BASE, PIVOT)))
    breakout = update(PIVOT + 10, at=stream[-1].at + BAR_S, source="rest")

    feed(detector, stream)

    assert [s.at for s in detector.on_price(breakout)] == [breakout.at]


def test_an_update_older_than_the_last_one_is_ignored() -> None:
    detector = VcpBreakoutDetector()
    stream = list(updates(walk(*BASE, PIVOT)))
    feed(detector, stream)
    late = update(PIVOT + 10, at=stream[-1].at - 1)

    assert detector.on_price(late) == []
    on_time = update(PIVOT + 10, at=stream[-1].at + 1)
    assert detector.on_price(on_time) != []


def test_codes_keep_their_own_state() -> None:
    detector = VcpBreakoutDetector()
    base = list(updates(walk(*BASE, PIVOT + 10), code="005930"))
    flat = list(updates([9_700] * len(base), code="000660"))
    interleaved = [u for pair in zip(base, flat, strict=True) for u in pair]

    signals = feed(detector, interleaved)

    assert [s.code for s in signals] == ["005930"]


def test_reset_forgets_the_base() -> None:
    detector = VcpBreakoutDetector()
    stream = list(updates(walk(*BASE, PIVOT)))
    feed(detector, stream)
    detector.reset(CODE)

    assert detector.on_price(update(PIVOT + 10, at=stream[-1].at + BAR_S)) == []


def test_the_same_updates_give_the_same_signal_ids() -> None:
    stream = list(updates(walk(*BASE, PIVOT + 10)))

    first = feed(VcpBreakoutDetector(), stream)
    second = feed(VcpBreakoutDetector(), stream)
    renamed = feed(VcpBreakoutDetector(name="vcp-tight"), stream)

    assert len(first) == 1
    assert first == second
    assert first[0].signal_id == second[0].signal_id
    assert renamed[0].signal_id != first[0].signal_id


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bar_s": 0}, "bar_s must be positive"),
        ({"contractions": 1}, "contractions must be at least 2"),
        ({"swing_pct": 0.06}, "swing_pct <= max_last_depth"),
        ({"max_base_bars": 5}, "cannot hold 3 contractions"),
        ({"max_extension": -0.01}, "max_extension"),
        ({"volume_dry_up": 0}, "volume_dry_up"),
    ],
)
def test_nonsense_parameters_are_refused(params: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VcpParams(**params)  # type: ignore[arg-type]
