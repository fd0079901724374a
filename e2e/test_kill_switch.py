"""The kill switch, pressed on the dashboard by an operator while the broker fails orders.

The stack runs the system's trading desk live (``LiveTrading``, e2e/live.py): the mock
market trades from 15:00 KST, and a gap up of 10 % in one of the desk's codes makes the
desk's closing-bet detector signal a buy of it, which the risk gate admits and the trading
service sends to the mock broker. Each code signals at most once a day, so each of the
three codes makes one signal when the test wants one; nothing else in a few seconds of the
mock market signals at all (see e2e/live.py), so every order the broker sees is one the
test caused.

What the tests read: on the page, the Trading card (``halt-state``, its detail, the switch)
and the signal list; from the stack, the broker's journal of order requests (faulted ones
included: a request the broker answered with an error still reached it), the service's
order records and the desk's counters.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from e2e.dashboard import Dashboard
from e2e.live import ORDER_PATH, LiveStack, LiveTrading, eventually
from system.service import OrderRecord

SAMSUNG = "005930"
HYNIX = "000660"
HYUNDAI = "005380"
TOKEN = "operator-token-for-e2e-0123"

TRADING = LiveTrading(mode="live", detectors=("closing-bet",), codes=(SAMSUNG, HYNIX, HYUNDAI))
DESK = pytest.mark.live_stack(trading=TRADING, operator_token=TOKEN)


def gap_up(live: LiveStack, code: str) -> None:
    """The market lifts ``code`` 10 % from the next second: the closing bet signals a buy."""
    live.market_event({"kind": "gap", "code": code, "pct": 10})


def statuses(live: LiveStack) -> list[tuple[str, str]]:
    """(code, status) of each order the service was given, oldest first."""
    return [(record.order.code, record.status) for record in live.orders()]


def ids(records: list[OrderRecord]) -> list[str]:
    return [record.order.client_order_id for record in records]


@DESK
def test_the_kill_switch_pressed_during_a_broker_fault_stops_every_order(
    page: Page, live: LiveStack
) -> None:
    dashboard = Dashboard.open(page, live.url)
    dashboard.expect_trading("running")
    expect(dashboard.halt_detail).to_have_text("")

    # Trading works: a signal on the page, and its order acknowledged by the broker.
    gap_up(live, SAMSUNG)
    expect(dashboard.signals).to_have_count(1)
    expect(dashboard.signals.first).to_contain_text(SAMSUNG)
    eventually(lambda: statuses(live), lambda s: s == [(SAMSUNG, "acked")], "one order acked")

    # The fault: from now on the broker answers every order "per-second budget exceeded"
    # (EGW00201). The next signal's order reaches it, is refused every time it is tried, and
    # the service gives up on it (after 3 s, e2e/live.py); trading is not halted by that.
    live.broker_fault(
        {
            "id": "orders-refused",
            "where": {"path": ORDER_PATH},
            "what": {"kind": "error", "code": "EGW00201"},
        }
    )
    gap_up(live, HYNIX)
    expect(dashboard.signals).to_have_count(2)
    expect(dashboard.signals.first).to_contain_text(HYNIX)
    eventually(
        lambda: statuses(live),
        lambda s: s == [(SAMSUNG, "acked"), (HYNIX, "failed")],
        "the order under the fault given up",
    )
    faulted = [entry for entry in live.broker_orders() if entry.fault]
    assert faulted, "the fault never struck an order"
    assert all(entry.code == "EGW00201" for entry in faulted)
    dashboard.expect_trading("running")

    # The operator halts trading from the page, the fault still in force.
    dashboard.press_kill_switch(TOKEN, why="broker refusing orders")

    dashboard.expect_trading("halted")
    expect(dashboard.halt_detail).to_contain_text("manual (by hand): broker refusing orders")
    expect(dashboard.error).to_be_hidden()
    expect(dashboard.halt_reason).to_have_value("")
    reached = len(live.broker_orders())
    records = live.orders()
    before = live.desk_metrics()
    assert before["desk_halts"] == 1

    # A signal after the press is shown and refused: no order is given to the service, none
    # reaches the broker, while the desk goes on taking prices for a few seconds.
    gap_up(live, HYUNDAI)
    expect(dashboard.signals).to_have_count(3)
    expect(dashboard.signals.first).to_contain_text(HYUNDAI)
    after = eventually(
        live.desk_metrics,
        lambda m: (
            m["desk_refused"] == before["desk_refused"] + 1
            and m["desk_updates"] >= before["desk_updates"] + 9
        ),  # 3 s of the 3 codes' prices
        "the signal refused, and the desk still handling prices",
    )
    assert after["desk_signals"] == before["desk_signals"] + 1
    assert after["desk_orders_sent"] == before["desk_orders_sent"]
    assert ids(live.orders()) == ids(records)
    assert len(live.broker_orders()) == reached
    dashboard.expect_trading("halted")  # and still, after the page polled again

    # Released from the page: trading runs again (the fault does not halt it by itself).
    dashboard.press_kill_switch(TOKEN)

    dashboard.expect_trading("running")
    expect(dashboard.halt_detail).to_have_text("")
    expect(dashboard.error).to_be_hidden()


@DESK
def test_a_wrong_operator_token_is_refused_and_trading_goes_on(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url)
    dashboard.expect_trading("running")

    dashboard.press_kill_switch("not-the-operator-token", why="a guess")

    expect(dashboard.error).to_be_visible()
    expect(dashboard.error).to_have_attribute("data-code", "kill_switch_401")
    expect(dashboard.error_text).to_contain_text("the operator token is wrong")
    expect(dashboard.error_text).not_to_contain_text("not-the-operator-token")
    dashboard.expect_trading("running")
    # The desk was not halted: a signal still becomes an order at the broker.
    gap_up(live, SAMSUNG)
    expect(dashboard.signals).to_have_count(1)
    eventually(lambda: statuses(live), lambda s: s == [(SAMSUNG, "acked")], "one order acked")
    assert live.desk_metrics()["desk_halts"] == 0
    assert len(live.broker_orders()) == 1
    dashboard.expect_trading("running")


def test_without_a_trading_desk_the_page_offers_no_switch(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url)

    expect(dashboard.halt_state).to_have_attribute("data-state", "absent")
    expect(dashboard.halt_state).to_have_text("no trading desk")
    expect(dashboard.kill_switch_form).to_be_hidden()
