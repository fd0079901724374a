"""The dashboard as a user sees it: what the tests look at and do, by ``data-testid``.

Assertions use Playwright's ``expect``, which waits for the page to get there. A state that
lasts less than a poll (a feed *stalled* for 0.2 s before it is *reconnecting*) could slip
between two polls, so ``Dashboard.open`` also records every connection state and feed detail
the page shows (a ``MutationObserver``, installed before the page's script runs) and
``expect_shown`` asserts on that timeline.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

# Appends "<data-state>|<feed detail>" to window.__squallSeen whenever either changes.
_RECORDER = """
(() => {
  const seen = (window.__squallSeen = []);
  document.addEventListener("DOMContentLoaded", () => {
    const state = document.querySelector('[data-testid="connection-state"]');
    const detail = document.querySelector('[data-testid="feed-detail"]');
    const record = () => {
      const entry = `${state.dataset.state}|${detail.textContent}`;
      if (seen[seen.length - 1] !== entry) seen.push(entry);
    };
    const options = { attributes: true, childList: true, characterData: true, subtree: true };
    new MutationObserver(record).observe(state, options);
    new MutationObserver(record).observe(detail, options);
    record();
  });
})();
"""

# A price as the page formats it (ko-KR grouping), e.g. "76,700".
PRICE_TEXT = re.compile(r"^\d{1,3}(,\d{3})*$")
# A P&L figure as the page shows it: signed unless zero, e.g. "+12,300", "-800", "0".
MONEY_TEXT = re.compile(r"^(0|[+-]\d{1,3}(,\d{3})*)$")


def won(amount: float) -> str:
    """An amount of won as the page formats it (ko-KR grouping): 76700 → "76,700"."""
    return f"{amount:,.2f}".rstrip("0").rstrip(".") if amount % 1 else f"{int(amount):,}"


def signed(amount: int) -> str:
    """A P&L figure as the page formats it: "+12,300", "-800", "0"."""
    return f"+{amount:,}" if amount > 0 else f"{amount:,}"


def amount(text: str) -> int:
    """The whole number of won a cell shows ("+12,300" → 12300)."""
    return int(text.replace(",", "").replace("+", ""))


class Dashboard:
    """One page of the dashboard, opened on the live stack's gateway."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.state = page.get_by_test_id("connection-state")
        self.stale_badge = page.get_by_test_id("stale-badge")
        self.error = page.get_by_test_id("error-message")
        self.error_text = page.get_by_test_id("error-text")
        self.ticker_input = page.get_by_test_id("ticker-input")
        self.subscribe_button = page.get_by_test_id("subscribe-button")
        self.feed_detail = page.get_by_test_id("feed-detail")
        self.client_id = page.get_by_test_id("client-id")
        self.rows = page.get_by_test_id("price-rows").locator("tr")
        self.signals = page.get_by_test_id("signal-item")  # newest first
        self.halt_state = page.get_by_test_id("halt-state")
        self.halt_detail = page.get_by_test_id("halt-detail")
        self.kill_switch_form = page.get_by_test_id("kill-switch-form")
        self.operator_token = page.get_by_test_id("operator-token")
        self.halt_reason = page.get_by_test_id("halt-reason")
        self.kill_switch = page.get_by_test_id("kill-switch")
        self.trading_mode = page.get_by_test_id("trading-mode")
        self.pnl = page.get_by_test_id("pnl")
        self.realised_today = page.get_by_test_id("pnl-realised-today")
        self.realised_total = page.get_by_test_id("pnl-realised-total")
        self.unrealised = page.get_by_test_id("pnl-unrealised")
        self.positions_card = page.get_by_test_id("positions-card")
        self.positions = page.get_by_test_id("position-rows").locator("tr")
        self.positions_empty = page.get_by_test_id("positions-empty")
        self.orders_card = page.get_by_test_id("orders-card")
        self.orders = page.get_by_test_id("order-row")  # newest first
        self.orders_empty = page.get_by_test_id("orders-empty")

    @classmethod
    def open(cls, page: Page, url: str, *, tickers: tuple[str, ...] = ()) -> Dashboard:
        """Open the page (on a watch list of ``tickers``, through the page's own
        ``?tickers=`` link) and wait until it is connected with a live feed."""
        page.add_init_script(_RECORDER)
        page.goto(url + "/" + (f"?tickers={','.join(tickers)}" if tickers else ""))
        dashboard = cls(page)
        dashboard.expect_live()
        return dashboard

    # -- doing -------------------------------------------------------------------------

    def subscribe(self, ticker: str) -> None:
        """Type ``ticker`` and press Subscribe, as a user would."""
        self.ticker_input.fill(ticker)
        self.subscribe_button.click()

    def press_kill_switch(self, token: str, *, why: str = "") -> None:
        """Type the operator token (and, to halt, why) and press the switch, as an operator
        would: it halts trading while it says "Halt trading", resumes it after."""
        self.operator_token.fill(token)
        if why:
            self.halt_reason.fill(why)
        self.kill_switch.click()

    # -- parts of the page ----------------------------------------------------------------

    def row(self, ticker: str) -> Locator:
        return self.page.get_by_test_id(f"price-row-{ticker}")

    def price(self, ticker: str) -> Locator:
        return self.page.get_by_test_id(f"price-{ticker}")

    def volume(self, ticker: str) -> Locator:
        return self.page.get_by_test_id(f"volume-{ticker}")

    def source(self, ticker: str) -> Locator:
        return self.page.get_by_test_id(f"source-{ticker}")

    def stale_tag(self, ticker: str) -> Locator:
        return self.page.get_by_test_id(f"stale-{ticker}")

    def position(self, ticker: str, column: str) -> Locator:
        """A cell of ``ticker``'s position: quantity, average, last, value or unrealised."""
        return self.page.get_by_test_id(f"position-{column}-{ticker}")

    def order(self, index: int, column: str) -> Locator:
        """A cell of the ``index``-th order listed (0: the newest): id, side, code,
        quantity, price, status or about (the broker's number, or why it failed)."""
        return self.orders.nth(index).get_by_test_id(f"order-{column}")

    def texts(self, *testids: str) -> dict[str, str]:
        """The text of each element named, read at one instant (one script run, so no
        redraw of the page falls between two of them); "" for one that is missing."""
        texts: dict[str, str] = self.page.evaluate(
            """(ids) => Object.fromEntries(ids.map((id) => {
                 const node = document.querySelector(`[data-testid="${CSS.escape(id)}"]`);
                 return [id, node ? node.textContent : ""];
               }))""",
            list(testids),
        )
        return texts

    def seen(self) -> list[str]:
        """Every "<data-state>|<feed detail>" the page has shown, oldest first."""
        seen: list[str] = self.page.evaluate("() => window.__squallSeen || []")
        return seen

    # -- expectations ---------------------------------------------------------------------

    def expect_live(self, timeout: float = 10_000) -> None:
        """Connected to the gateway, the feed live, no stale badge."""
        expect(self.state).to_have_attribute("data-state", "connected", timeout=timeout)
        expect(self.state).to_have_text("Connected")
        expect(self.stale_badge).to_be_hidden()

    def expect_stale(self, timeout: float = 10_000) -> None:
        """Still connected to the gateway, but its feed is not live: the page says so."""
        expect(self.state).to_have_attribute("data-state", "stale", timeout=timeout)
        expect(self.state).to_have_text("Connected · prices stale")
        expect(self.stale_badge).to_be_visible()
        expect(self.stale_badge).to_have_text("Stale prices")

    def expect_trading(self, state: str, timeout: float = 10_000) -> None:
        """The Trading card shows ``state`` ("running" or "halted"), the switch offering the
        opposite and pressable."""
        expect(self.halt_state).to_have_attribute("data-state", state, timeout=timeout)
        expect(self.halt_state).to_have_text(state)
        expect(self.kill_switch).to_have_text(
            "Resume trading" if state == "halted" else "Halt trading"
        )
        expect(self.kill_switch).to_be_enabled()

    def expect_prices_moving(self, ticker: str, *, changes: int = 2) -> None:
        """``ticker``'s row shows live feed prices, and they change ``changes`` times.

        The day's volume grows with every trade the feed reports, so a frozen volume means
        no new price reached the page (the price itself may stay on the same tick).
        """
        expect(self.row(ticker)).to_have_count(1)
        for _ in range(changes):
            self._expect_fresh_feed_price(ticker)
            before = self.volume(ticker).text_content() or ""
            expect(self.volume(ticker)).not_to_have_text(before)
        self._expect_fresh_feed_price(ticker)

    def _expect_fresh_feed_price(self, ticker: str) -> None:
        expect(self.source(ticker)).to_have_text("feed")
        expect(self.price(ticker)).to_have_text(PRICE_TEXT)
        expect(self.stale_tag(ticker)).to_be_hidden()
        expect(self.row(ticker)).not_to_have_class(re.compile(r"\bis-stale\b"))

    def expect_shown(self, pattern: str, timeout: float = 10_000) -> None:
        """At some point since it opened, the page showed "<data-state>|<feed detail>"
        matching the regular expression ``pattern`` (however briefly)."""
        try:
            self.page.wait_for_function(
                "(pattern) => (window.__squallSeen || []).some((e) => new RegExp(pattern).test(e))",
                arg=pattern,
                timeout=timeout,
            )
        except PlaywrightError:
            shown = json.dumps(self.seen(), ensure_ascii=False, indent=1)
            raise AssertionError(
                f"the page never showed a state matching {pattern!r}; it showed {shown}"
            ) from None
