"""Orders, positions and P&L on the dashboard while the trading desk trades.

The stack runs the desk with the closing bet, as e2e/test_kill_switch.py does (see
e2e/live.py): a gap up of 10 % in one of its codes makes the desk buy it at the market, and
a second gap of 10 % lifts the price past the trade's take-profit (6 % over its entry), so
the desk sells it. The page reads ``/api/trading`` once a second; the test waits for what
the page must show and checks it against the service's order records and the desk's books,
read from the stack.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from e2e.dashboard import MONEY_TEXT, PRICE_TEXT, Dashboard, amount, signed, won
from e2e.live import LiveStack, LiveTrading, eventually

SAMSUNG = "005930"
HYNIX = "000660"

LIVE = pytest.mark.live_stack(
    trading=LiveTrading(mode="live", detectors=("closing-bet",), codes=(SAMSUNG, HYNIX))
)
PAPER = pytest.mark.live_stack(
    trading=LiveTrading(mode="paper", detectors=("closing-bet",), codes=(SAMSUNG, HYNIX))
)


def gap_up(live: LiveStack, code: str) -> None:
    """The market lifts ``code`` 10 % from the next second (gaps of one code compound)."""
    live.market_event({"kind": "gap", "code": code, "pct": 10})


def statuses(live: LiveStack) -> list[tuple[str, str, str]]:
    """(side, code, status) of each order the service was given, oldest first."""
    return [(r.order.side, r.order.code, r.status) for r in live.orders()]


@LIVE
def test_an_order_a_position_and_the_pnl_appear_as_the_desk_trades(
    page: Page, live: LiveStack
) -> None:
    dashboard = Dashboard.open(page, live.url)
    expect(dashboard.trading_mode).to_have_text("live")
    expect(dashboard.orders_empty).to_be_visible()
    expect(dashboard.positions_empty).to_be_visible()
    for figure in (dashboard.realised_today, dashboard.realised_total, dashboard.unrealised):
        expect(figure).to_have_text("0")

    # The buy: listed with the broker's order number as soon as the broker acknowledged it.
    gap_up(live, SAMSUNG)
    eventually(lambda: statuses(live), lambda s: s == [("buy", SAMSUNG, "acked")], "a buy acked")
    (buy,) = live.orders()
    assert buy.odno
    expect(dashboard.orders).to_have_count(1)
    expect(dashboard.orders_empty).to_be_hidden()
    expect(dashboard.order(0, "id")).to_have_text(buy.client_order_id)
    expect(dashboard.order(0, "side")).to_have_text("buy")
    expect(dashboard.order(0, "code")).to_have_text(SAMSUNG)
    expect(dashboard.order(0, "quantity")).to_have_text(won(buy.order.quantity))
    expect(dashboard.order(0, "price")).to_have_text("market")
    expect(dashboard.order(0, "status")).to_have_text("acked")
    expect(dashboard.order(0, "about")).to_have_text(buy.odno)

    # The position its fill opened, marked at the latest price the desk handled.
    (held,) = eventually(live.positions, lambda p: len(p) == 1, "the buy's fill booked")
    assert held.code == SAMSUNG
    expect(dashboard.positions).to_have_count(1)
    expect(dashboard.positions_empty).to_be_hidden()
    expect(dashboard.position(SAMSUNG, "quantity")).to_have_text(won(held.quantity))
    expect(dashboard.position(SAMSUNG, "average")).to_have_text(won(held.average_price))
    expect(dashboard.position(SAMSUNG, "last")).to_have_text(PRICE_TEXT)
    expect(dashboard.position(SAMSUNG, "unrealised")).to_have_text(MONEY_TEXT)
    # The price moves every second: the figures are checked against each other, as shown
    # together in one redraw.
    shown = dashboard.texts(
        f"position-last-{SAMSUNG}",
        f"position-value-{SAMSUNG}",
        f"position-unrealised-{SAMSUNG}",
        "pnl-unrealised",
    )
    last, value, unrealised, total = (amount(text) for text in shown.values())
    assert value == held.quantity * last
    assert unrealised == value - held.cost
    assert total == unrealised  # the only position
    expect(dashboard.realised_today).to_have_text("0")

    # The sale: a second gap passes the take-profit; the position closes with a gain.
    gap_up(live, SAMSUNG)
    eventually(
        lambda: statuses(live),
        lambda s: s == [("buy", SAMSUNG, "acked"), ("sell", SAMSUNG, "acked")],
        "the take-profit sale acked",
    )
    eventually(live.positions, lambda p: p == [], "the sale's fill booked")
    realised = live.realised()
    assert realised > 0
    expect(dashboard.orders).to_have_count(2)
    expect(dashboard.order(0, "id")).to_have_text(f"{buy.client_order_id}-exit")
    expect(dashboard.order(0, "side")).to_have_text("sell")
    expect(dashboard.order(0, "quantity")).to_have_text(won(held.quantity))
    expect(dashboard.order(0, "status")).to_have_text("acked")
    expect(dashboard.order(1, "id")).to_have_text(buy.client_order_id)
    expect(dashboard.positions).to_have_count(0)
    expect(dashboard.positions_empty).to_be_visible()
    expect(dashboard.realised_today).to_have_text(signed(realised))
    expect(dashboard.realised_today).to_have_class(re.compile(r"\bup\b"))  # a gain, in red
    expect(dashboard.realised_total).to_have_text(signed(realised))
    expect(dashboard.unrealised).to_have_text("0")
    expect(dashboard.error).to_be_hidden()


@PAPER
def test_in_paper_mode_a_signal_shows_and_no_order_or_position(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url)
    expect(dashboard.trading_mode).to_have_text("paper")
    expect(page.get_by_test_id("trading-detail")).to_contain_text("no order is sent")

    gap_up(live, SAMSUNG)
    expect(dashboard.signals).to_have_count(1)
    eventually(live.desk_metrics, lambda m: m["desk_paper_orders"] == 1, "a paper order")
    page.wait_for_timeout(2_000)  # two polls of /api/trading after the paper order

    assert live.orders() == []
    expect(dashboard.orders).to_have_count(0)
    expect(dashboard.orders_empty).to_be_visible()
    expect(dashboard.positions_empty).to_be_visible()
    expect(dashboard.realised_total).to_have_text("0")


def test_without_a_trading_desk_the_page_shows_no_orders_or_positions(
    page: Page, live: LiveStack
) -> None:
    dashboard = Dashboard.open(page, live.url)

    expect(dashboard.halt_state).to_have_attribute("data-state", "absent")
    expect(dashboard.pnl).to_be_hidden()
    expect(dashboard.positions_card).to_be_hidden()
    expect(dashboard.orders_card).to_be_hidden()
