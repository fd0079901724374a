"""Realtime records built from the seeded market, without sockets."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from mocks import krx
from mocks.clock import KST, MockClock
from mocks.feed.records import BOOK_COLUMNS, TRADE_COLUMNS, Tape
from mocks.market import BookLevel, Market, OrderBook

OPEN = datetime(2025, 1, 6, 9, 0, tzinfo=KST)


def tape(seed: int = 0, market: Market | None = None) -> Tape:
    return Tape(market or Market(seed), MockClock(OPEN))


def trade(t: Tape, code: str, step: int) -> dict[str, str]:
    return dict(zip(TRADE_COLUMNS, t.trade(code, step), strict=True))


def book(t: Tape, code: str, step: int) -> dict[str, str]:
    return dict(zip(BOOK_COLUMNS, t.book(code, step), strict=True))


def test_column_lists_are_kis_own() -> None:
    assert len(TRADE_COLUMNS) == len(set(TRADE_COLUMNS)) == 46
    assert TRADE_COLUMNS[:6] == (
        "MKSC_SHRN_ISCD",
        "STCK_CNTG_HOUR",
        "STCK_PRPR",
        "PRDY_VRSS_SIGN",
        "PRDY_VRSS",
        "PRDY_CTRT",
    )
    assert TRADE_COLUMNS[12:15] == ("CNTG_VOL", "ACML_VOL", "ACML_TR_PBMN")
    assert (TRADE_COLUMNS[21], TRADE_COLUMNS[45]) == ("CCLD_DVSN", "VI_STND_PRC")
    assert len(BOOK_COLUMNS) == len(set(BOOK_COLUMNS)) == 59
    assert BOOK_COLUMNS[:4] == ("MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE", "ASKP1")
    assert (BOOK_COLUMNS[12], BOOK_COLUMNS[13], BOOK_COLUMNS[42]) == (
        "ASKP10",
        "BIDP1",
        "BIDP_RSQN10",
    )
    assert BOOK_COLUMNS[43:45] == ("TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN")
    assert (BOOK_COLUMNS[53], BOOK_COLUMNS[58]) == ("ACML_VOL", "STCK_DEAL_CLS_CODE")


def test_trade_record_is_the_market_at_that_step() -> None:
    t, market = tape(3), Market(3)
    instrument = market.instrument("035720")
    tick = market.tick("035720", 42)
    row = trade(t, "035720", 42)
    change = tick.price - instrument.base_price
    assert row["MKSC_SHRN_ISCD"] == "035720"
    assert row["STCK_CNTG_HOUR"] == "090042"
    assert row["STCK_PRPR"] == str(tick.price)
    assert row["PRDY_VRSS"] == str(change)
    assert row["PRDY_CTRT"] == f"{change / instrument.base_price * 100:.2f}"
    assert (row["STCK_OPRC"], row["STCK_HGPR"], row["STCK_LWPR"]) == (
        str(tick.open),
        str(tick.high),
        str(tick.low),
    )
    assert (row["ACML_VOL"], row["ACML_TR_PBMN"]) == (str(tick.volume), str(tick.turnover))
    levels = market.order_book("035720", 42)
    assert (row["ASKP1"], row["BIDP1"]) == (str(levels.asks[0].price), str(levels.bids[0].price))
    assert row["BSOP_DATE"] == "20250106"
    assert row["WGHN_AVRG_STCK_PRC"] == f"{tick.turnover / tick.volume:.2f}"


@pytest.mark.parametrize("code", ["005930", "000890", "207940"])
def test_accumulated_volume_is_the_running_sum_of_step_volumes(code: str) -> None:
    t = tape(11)
    rows = [trade(t, code, step) for step in range(400)]
    assert rows[0]["CNTG_VOL"] == rows[0]["ACML_VOL"]  # the opening auction
    for before, after in itertools.pairwise(rows):
        assert int(after["ACML_VOL"]) == int(before["ACML_VOL"]) + int(after["CNTG_VOL"])
    assert rows[-1]["ACML_VOL"] == str(Market(11).tick(code, 399).volume)


def test_every_traded_share_after_the_open_is_a_buy_or_a_sell() -> None:
    t = tape(5)
    rows = [trade(t, "000660", step) for step in range(300)]
    assert rows[0]["CCLD_DVSN"] == "3"
    assert {row["CCLD_DVSN"] for row in rows[1:]} == {"1", "5"}
    last = rows[-1]
    classified = int(last["SHNU_CNTG_SMTN"]) + int(last["SELN_CNTG_SMTN"])
    assert classified == int(last["ACML_VOL"]) - int(rows[0]["CNTG_VOL"])
    assert int(last["SHNU_CNTG_CSNU"]) + int(last["SELN_CNTG_CSNU"]) == 299
    for before, after in itertools.pairwise(rows):
        if int(after["STCK_PRPR"]) > int(before["STCK_PRPR"]):
            assert after["CCLD_DVSN"] == "1"
        elif int(after["STCK_PRPR"]) < int(before["STCK_PRPR"]):
            assert after["CCLD_DVSN"] == "5"


def clock_time(step: int) -> str:
    return f"09{step // 60:02d}{step % 60:02d}"


def test_high_and_low_times_point_at_the_steps_that_set_them() -> None:
    t, market = tape(2), Market(2)
    last = market.tick("005380", 500)
    high_step = next(s for s in range(501) if market.tick("005380", s).high == last.high)
    low_step = next(s for s in range(501) if market.tick("005380", s).low == last.low)
    assert 0 < high_step < 500
    assert 0 < low_step < 500
    row = trade(t, "005380", 500)
    assert (row["HGPR_HOUR"], row["LWPR_HOUR"]) == (clock_time(high_step), clock_time(low_step))
    assert row["HGPR_VRSS_PRPR"] == str(last.price - last.high)
    assert row["LWPR_VRSS_PRPR"] == str(last.price - last.low)


def test_sign_codes_follow_kis() -> None:
    t, market = tape(0), Market(0)
    for step in range(200):
        row = trade(t, "005930", step)
        price, base = int(row["STCK_PRPR"]), market.instrument("005930").base_price
        assert row["PRDY_VRSS_SIGN"] == ("2" if price > base else "3" if price == base else "5")
        opening = int(row["STCK_OPRC"])
        assert row["OPRC_VRSS_PRPR_SIGN"] == (
            "2" if price > opening else "3" if price == opening else "5"
        )


def test_book_record_is_the_market_book_at_that_step() -> None:
    t, market = tape(4), Market(4)
    row = book(t, "068270", 77)
    levels = market.order_book("068270", 77)
    assert row["BSOP_HOUR"] == "090117"
    for n in range(1, 11):
        assert row[f"ASKP{n}"] == str(levels.asks[n - 1].price)
        assert row[f"BIDP{n}"] == str(levels.bids[n - 1].price)
        assert row[f"ASKP_RSQN{n}"] == str(levels.asks[n - 1].quantity)
        assert row[f"BIDP_RSQN{n}"] == str(levels.bids[n - 1].quantity)
    assert row["TOTAL_ASKP_RSQN"] == str(sum(level.quantity for level in levels.asks))
    assert row["ACML_VOL"] == str(market.tick("068270", 77).volume)
    before = market.order_book("068270", 76)
    assert int(row["TOTAL_BIDP_RSQN_ICDC"]) == sum(level.quantity for level in levels.bids) - sum(
        level.quantity for level in before.bids
    )
    assert book(t, "068270", 0)["TOTAL_ASKP_RSQN_ICDC"] == "0"


def test_missing_levels_near_a_limit_are_zero() -> None:
    class PinnedAtTheLimit(Market):
        def order_book(self, code: str, step: int, depth: int = 10) -> OrderBook:
            price = self.instrument(code).upper_limit
            asks: tuple[BookLevel, ...] = ()
            bids = (BookLevel(price - krx.tick_size(price), 7),)
            return OrderBook(code, step, asks, bids)

    row = book(tape(market=PinnedAtTheLimit(0)), "005930", 3)
    assert (row["ASKP1"], row["ASKP_RSQN1"], row["ASKP10"], row["TOTAL_ASKP_RSQN"]) == ("0",) * 4
    assert (row["BIDP_RSQN1"], row["BIDP2"], row["TOTAL_BIDP_RSQN"]) == ("7", "0", "7")


def test_the_same_seed_gives_the_same_records() -> None:
    first, second, other = tape(9), tape(9), tape(10)
    rows = [first.trade("035420", s) + first.book("035420", s) for s in range(50)]
    assert rows == [second.trade("035420", s) + second.book("035420", s) for s in range(50)]
    assert rows != [other.trade("035420", s) + other.book("035420", s) for s in range(50)]


def test_records_do_not_depend_on_the_order_they_are_asked_for() -> None:
    forward, backward = tape(1), tape(1)
    ahead = [forward.trade("000270", s) for s in range(60)]
    behind = [backward.trade("000270", s) for s in reversed(range(60))][::-1]
    assert ahead == behind
