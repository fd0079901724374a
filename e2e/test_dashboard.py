"""The dashboard in a real Chromium while the mocks break the feed and the gateway restarts.

Each test gets its own stack (``live``, e2e/live.py) and a fresh browser context, asserts the
page is healthy before it breaks anything, and then asserts on what a user would see: the
connection pill (``data-state``), the stale badge, each row's source and stale tag, prices
whose volume keeps growing, the error banner. The timings (2 s stall window, 1 s REST
fallback, 1 s gateway heartbeat) are set in e2e/live.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from e2e.dashboard import Dashboard
from e2e.live import LiveStack

SAMSUNG = "005930"
HYNIX = "000660"


def test_subscribed_prices_update_live(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url)
    expect(page.get_by_test_id("prices-empty")).to_be_visible()

    dashboard.subscribe(SAMSUNG)

    expect(dashboard.ticker_input).to_have_value("")
    expect(dashboard.row(SAMSUNG)).to_be_visible()
    expect(page.get_by_test_id("prices-empty")).to_be_hidden()
    dashboard.expect_prices_moving(SAMSUNG, changes=3)
    expect(dashboard.error).to_be_hidden()
    dashboard.expect_live()
    expect(page.get_by_test_id("health-feed")).to_have_attribute("data-state", "healthy")


def test_feed_disconnect_shows_stale_then_recovers_by_itself(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url, tickers=(SAMSUNG,))
    dashboard.expect_prices_moving(SAMSUNG)
    client = dashboard.client_id.text_content()

    # The feed server goes down: every connection is cut without a close frame and new ones
    # are refused for 3 s, then it listens again on the same port.
    live.feed_fault({"what": {"kind": "restart", "seconds": 3}, "when": {"first": 1}})

    dashboard.expect_stale()
    expect(dashboard.feed_detail).to_contain_text("Feed reconnecting")
    expect(dashboard.stale_tag(SAMSUNG)).to_be_visible()
    # Meanwhile the gateway quotes the ticker over REST, marked stale.
    expect(dashboard.source(SAMSUNG)).to_have_text("REST")
    expect(dashboard.stale_tag(SAMSUNG)).to_be_visible()

    # Nobody touches the page: the feed comes back and so do live prices.
    dashboard.expect_live(timeout=15_000)
    expect(dashboard.feed_detail).to_contain_text("reconnect(s)")
    dashboard.expect_prices_moving(SAMSUNG)
    # The page's own socket to the gateway never dropped: only the feed behind it did.
    expect(dashboard.client_id).to_have_text(client or "")


def test_feed_stall_shows_stale_then_recovers_by_itself(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url, tickers=(SAMSUNG,))
    dashboard.expect_prices_moving(SAMSUNG)

    # The feed falls silent without closing anything (a half-open connection) for 6 s; the
    # stalled session keeps the app key, so reconnecting fails until the stall is over.
    live.feed_fault({"what": {"kind": "stall", "seconds": 6}, "when": {"first": 1}})

    dashboard.expect_stale(timeout=10_000)
    dashboard.expect_shown(
        r"^stale\|Feed (stalled|reconnecting) — stalled: neither data nor a heartbeat"
    )
    expect(dashboard.stale_tag(SAMSUNG)).to_be_visible()
    expect(dashboard.row(SAMSUNG)).to_have_class(re.compile(r"\bis-stale\b"))

    dashboard.expect_live(timeout=15_000)
    dashboard.expect_prices_moving(SAMSUNG)


def test_gateway_restart_page_reconnects_and_resubscribes(page: Page, live: LiveStack) -> None:
    dashboard = Dashboard.open(page, live.url)
    dashboard.subscribe(SAMSUNG)
    dashboard.expect_prices_moving(SAMSUNG, changes=1)
    dashboard.subscribe(HYNIX)
    dashboard.expect_prices_moving(HYNIX, changes=1)

    live.stop_gateway()

    expect(dashboard.state).to_have_attribute("data-state", "reconnecting")
    expect(dashboard.state).to_contain_text("Reconnecting")
    for ticker in (SAMSUNG, HYNIX):
        expect(dashboard.stale_tag(ticker)).to_be_visible()
    expect(page.get_by_test_id("health-overall")).to_have_attribute("data-state", "unreachable")
    # The page keeps trying against the dead port (each failure is one more attempt).
    expect(dashboard.state).to_have_attribute("data-attempt", re.compile(r"^([2-9]|\d\d)$"))

    live.start_gateway()

    # A new process knows no subscriptions: prices flow again only if the page subscribed
    # again, by itself.
    dashboard.expect_live(timeout=15_000)
    expect(dashboard.rows).to_have_count(2)
    for ticker in (SAMSUNG, HYNIX):
        dashboard.expect_prices_moving(ticker)
    expect(dashboard.error).to_be_hidden()


@pytest.mark.parametrize("typed", ["12AB", "0059301", "5930"])
def test_malformed_subscription_shows_the_gateways_error(
    page: Page, live: LiveStack, typed: str
) -> None:
    dashboard = Dashboard.open(page, live.url)
    expect(dashboard.error).to_be_hidden()

    # The page sends what was typed; the gateway validates it and answers with an error.
    dashboard.subscribe(typed)

    expect(dashboard.error).to_be_visible()
    expect(dashboard.error).to_have_attribute("data-code", "invalid_ticker")
    expect(dashboard.error_text).to_have_text(
        f'"{typed}" is not a ticker code: expected a string of 6 digits such as "005930"'
    )
    expect(dashboard.row(typed)).to_have_count(0)
    expect(dashboard.rows).to_have_count(0)
    # An error ends nothing: the connection stays, the banner goes, a good ticker works.
    dashboard.expect_live()
    page.get_by_test_id("error-dismiss").click()
    expect(dashboard.error).to_be_hidden()
    dashboard.subscribe(SAMSUNG)
    dashboard.expect_prices_moving(SAMSUNG, changes=1)
    expect(dashboard.error).to_be_hidden()


def test_ticker_the_feed_refuses_shows_the_error_and_rest_prices(
    page: Page, live: LiveStack
) -> None:
    dashboard = Dashboard.open(page, live.url)
    live.feed_fault({"what": {"kind": "reject"}, "where": {"tr_key": HYNIX}})

    dashboard.subscribe(HYNIX)

    # What the gateway promises (system/gateway/prices.py): the subscriber hears why, and
    # gets the ticker's prices from REST quotes every interval, marked stale.
    expect(dashboard.error).to_have_attribute("data-code", "feed_subscribe_failed", timeout=5_000)
    expect(dashboard.error_text).to_contain_text(f"could not subscribe {HYNIX}")
    expect(dashboard.source(HYNIX)).to_have_text("REST", timeout=5_000)
    expect(dashboard.stale_tag(HYNIX)).to_be_visible()


def test_a_bad_ticker_in_the_link_is_refused_and_the_rest_of_the_page_works(
    page: Page, live: LiveStack
) -> None:
    # Text a CSS selector cannot hold unescaped: the page must not break on it.
    bad = '12"AB'
    dashboard = Dashboard.open(page, live.url, tickers=(SAMSUNG, bad))

    expect(dashboard.error).to_have_attribute("data-code", "invalid_ticker")
    # The gateway quotes the value as JSON: the quote inside is escaped.
    expect(dashboard.error_text).to_have_text(
        '"12\\"AB" is not a ticker code: expected a string of 6 digits such as "005930"'
    )
    dashboard.expect_prices_moving(SAMSUNG, changes=1)
