"""The history checks: each anomaly kind caught with the ids that show it, and a clean
history passing."""

from __future__ import annotations

from datetime import date

from harness.history import (
    BrokerOrder,
    HaltWindow,
    Limits,
    limits_never_exceeded,
    no_orders_while_halted,
    orders_not_lost,
    orders_placed_once,
)
from system.broker import OrderRequest
from system.service import OrderRecord

DAY = date(2026, 11, 23)
NEXT = date(2026, 11, 24)


def booked(
    odno: str,
    side: str = "buy",
    qty: int = 10,
    price: int = 10_000,
    at: float = 1.0,
    code: str = "005930",
    day: date = DAY,
) -> BrokerOrder:
    return BrokerOrder(odno, side, code, qty, qty, price, at, day)  # type: ignore[arg-type]


def record(
    cid: str, odno: str | None, status: str = "acked", events: list[tuple[float, str]] | None = None
) -> OrderRecord:
    order = OrderRequest(cid, "buy", "005930", 10)
    return OrderRecord(cid, order, status, odno, events or [(0.0, status)])  # type: ignore[arg-type]


def test_a_clean_history_passes_every_check() -> None:
    orders = [booked("1"), booked("2", "sell", price=10_500, at=2.0)]
    records = [record("a", "1"), record("b", "2")]
    limits = Limits(
        daily_loss=1, cumulative_loss=1, exposure_per_asset=100_000, concurrent_positions=1
    )
    checks = [
        orders_placed_once(records, orders),
        orders_not_lost(records, orders),
        limits_never_exceeded(orders, limits),
        no_orders_while_halted(orders, [HaltWindow("manual", 1.5, 1.9)]),
    ]
    assert [c.passed for c in checks] == [True] * 4, [c.observed for c in checks]
    assert checks[2].observed == "2 fill(s) replayed; worst day 0 won, in all 5,000 won"


def test_a_broker_order_the_system_never_knew_is_reported_by_its_odno() -> None:
    check = orders_placed_once(
        [record("a", "1"), record("a~resend1", "2")],
        [booked("1"), booked("2"), booked("3", at=7.0)],
    )
    assert not check.passed
    assert check.observed == (
        "placed but unknown to the system (1): ODNO 3 (buy 10 005930 at t=7.0)"
    )


def test_one_broker_order_claimed_by_two_system_orders_is_reported() -> None:
    check = orders_placed_once([record("a", "1"), record("b", "1")], [booked("1")])
    assert check.observed == "one broker order claimed twice (1): ODNO 1 by a, b"


def test_a_placed_order_missing_at_the_broker_and_a_reasonless_rejection() -> None:
    records = [record("a", "9"), record("b", None, "rejected", [(0.0, "sent")])]
    check = orders_not_lost(records, [])
    assert not check.passed
    assert check.observed == (
        "placed but not at the broker (1): a (ODNO 9); rejected without a reason (1): b"
    )


def test_a_daily_loss_past_its_limit_is_caught_a_profit_the_next_day_is_not_netted() -> None:
    orders = [
        booked("1", qty=10, price=10_000, at=1.0),
        booked("2", "sell", qty=10, price=9_000, at=2.0),  # -10,000 on DAY
        booked("3", qty=10, price=9_000, at=3.0, day=NEXT),
        booked("4", "sell", qty=10, price=9_500, at=4.0, day=NEXT),  # +5,000 on NEXT
    ]
    check = limits_never_exceeded(orders, Limits(daily_loss=9_999, cumulative_loss=9_999))
    assert check.observed == (
        "daily loss past its limit (1): ODNO 2 at t=2.0: 2026-11-23 at -10,000 won; "
        "cumulative loss past its limit (1): ODNO 2 at t=2.0: -10,000 won"
    )
    # Exactly at the limit is within it.
    assert limits_never_exceeded(orders, Limits(daily_loss=10_000)).passed


def test_exposure_and_concurrency_are_checked_at_every_fill() -> None:
    orders = [
        booked("1", qty=10, price=10_000, at=1.0),
        booked("2", qty=1, price=10_000, at=2.0),  # 110,000 in 005930
        booked("3", qty=1, price=50_000, at=3.0, code="000660"),  # two stocks held
    ]
    check = limits_never_exceeded(
        orders, Limits(exposure_per_asset=100_000, concurrent_positions=1)
    )
    assert check.observed == (
        "money in one stock past its cap (1): ODNO 2 at t=2.0: 005930 110,000 won; "
        "too many stocks held at once (1): ODNO 3 at t=3.0: 2 held"
    )


def test_unfilled_orders_change_nothing_in_the_replay() -> None:
    unfilled = BrokerOrder("1", "buy", "005930", 10, 0, 0, 1.0, DAY)
    assert limits_never_exceeded([unfilled], Limits(concurrent_positions=0)).passed


def test_an_order_inside_a_halt_is_caught_one_at_its_release_is_not() -> None:
    orders = [booked("1", at=5.0), booked("2", at=10.0), booked("3", at=12.0)]
    windows = [HaltWindow("daily-loss-limit", 4.0, 10.0), HaltWindow("manual", 11.0, None)]
    check = no_orders_while_halted(orders, windows)
    assert check.observed == (
        "order during a daily-loss-limit halt (1): ODNO 1 at t=5.0; "
        "order during a manual halt (1): ODNO 3 at t=12.0"
    )


def test_a_long_list_of_ids_is_cut_with_a_count() -> None:
    check = orders_placed_once([], [booked(str(i)) for i in range(8)])
    assert check.observed.startswith("placed but unknown to the system (8): ODNO 0 ")
    assert check.observed.endswith(" and 3 more")
