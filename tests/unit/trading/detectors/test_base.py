"""What every detector shares: the Signal and its derived id, the KRX tick rules, and the
shape a pipeline relies on."""

from __future__ import annotations

from datetime import datetime

import pytest

from system.broker.clock import KST
from system.market import PriceUpdate
from system.trading.detectors import (
    ClosingBetDetector,
    Detector,
    Signal,
    TriangularArbitrageDetector,
    VcpBreakoutDetector,
    daily_limits,
    floor_to_tick,
    signal_id,
    tick_size,
    ticks_above,
)


def signal(detector: str = "vcp", code: str = "005930", at: float = 120.5) -> Signal:
    return Signal(detector, code, "buy", 71_900, "why", 0.5, at)


def test_a_signal_id_depends_on_detector_code_and_time_only() -> None:
    base = signal()
    same = Signal("vcp", "005930", "sell", None, "another reason", 0.9, 120.5)

    assert base.signal_id == same.signal_id == signal_id("vcp", "005930", 120.5)
    assert base.signal_id.startswith("vcp-005930-")
    assert len({base.signal_id, *(s.signal_id for s in _neighbours())}) == 4


def _neighbours() -> list[Signal]:
    return [signal(detector="vcp2"), signal(code="000660"), signal(at=120.50000000000001)]


def test_a_signal_id_is_stable_across_processes() -> None:
    # A literal: a replay tomorrow, on another machine, must give this very id.
    assert signal_id("vcp", "005930", 120.5) == "vcp-005930-" + _digest("vcp\x1f005930\x1f120.5")


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_a_signal_is_frozen_and_its_id_is_not_an_argument() -> None:
    s = signal()

    with pytest.raises(AttributeError):
        s.price = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        Signal("vcp", "005930", "buy", None, "", 0.0, 0.0, "chosen-id")  # type: ignore[call-arg]


def test_every_detector_fits_the_detector_protocol() -> None:
    def wall(at: float) -> datetime:
        return datetime(2026, 3, 2, 15, 5, tzinfo=KST)

    detectors: list[Detector] = [
        VcpBreakoutDetector(),
        ClosingBetDetector(wall),
        TriangularArbitrageDetector(),
    ]
    update = PriceUpdate("005930", 71_900, 400, 0.56, 1_000, 10.0)

    assert [d.name for d in detectors] == ["vcp", "closing_bet", "triangular"]
    assert [d.on_price(update) for d in detectors] == [[], [], []]


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1_999, 1),
        (2_000, 5),
        (4_995, 5),
        (5_000, 10),
        (19_990, 10),
        (20_000, 50),
        (50_000, 100),
        (199_900, 100),
        (200_000, 500),
        (500_000, 1_000),
    ],
)
def test_tick_sizes_follow_the_krx_table(price: int, tick: int) -> None:
    assert tick_size(price) == tick


def test_prices_move_on_the_tick_grid() -> None:
    assert floor_to_tick(10_094.0) == 10_090
    assert floor_to_tick(50_049.9) == 50_000
    assert floor_to_tick(9_999.99) == 9_990
    # Float noise under a grid price (a product like 7,700 × 1.3) does not cost a tick.
    assert floor_to_tick(9_999.999999999998) == 10_000
    assert ticks_above(1_998, 3) == 2_005  # 1,999, 2,000, then 5-won ticks
    assert ticks_above(71_900, 0) == 71_900


@pytest.mark.parametrize(
    ("base", "limits"),
    [(10_000, (7_000, 13_000)), (65_400, (45_800, 85_000)), (1_000, (700, 1_300))],
)
def test_daily_limits_are_thirty_percent_cut_inwards_to_the_grid(
    base: int, limits: tuple[int, int]
) -> None:
    assert daily_limits(base) == limits
