"""Realtime records of the seeded market: H0STCNT0 (trades, 46 columns) and H0STASP0
(order book, 59 columns), one record per instrument per market step.

Prices, the book and cumulative volume come from ``mocks.market.Market`` at the step, so a
frame and the broker's REST quote of the same seed agree at the same step. The one
invariant a client may rely on to find gaps and duplicates holds exactly:

    ACML_VOL(step) == ACML_VOL(step - 1) + CNTG_VOL(step)      (ACML_VOL(-1) == 0)

CNTG_VOL is the step's traded volume, the difference of the simulator's cumulative volumes.
Columns the simulator has no notion of (buy/sell split, trade strength, the previous day's
volume, ...) are derived from the same seed, so every record is a pure function of
(seed, code, step, wall-clock origin) and of the market's events. Column lists: KIS's
open-trading-api samples (examples_llm/domestic_stock/ccnl_krx and asking_price_krx, the
59-column edition).

During a VI halt (``mocks.market_events``) nothing trades, so there is no H0STCNT0 record
of the code (``sends`` says which records exist); its H0STASP0 records go on with
HOUR_CLS_CODE "C" (KIS: 9시 이후의 예상가, VI발동) and the book of the auction. The volume
stands still during the halt, so the invariant above holds across it.
"""

from __future__ import annotations

import functools
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mocks.clock import MockClock
from mocks.feed.protocol import BOOK, TRADES
from mocks.market import STEP_SECONDS, BookLevel, Instrument, Market, OrderBook, day_sign
from mocks.market_events import MarketEvent, steps_kept

TRADE_COLUMNS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD",
    "STCK_CNTG_HOUR",
    "STCK_PRPR",
    "PRDY_VRSS_SIGN",
    "PRDY_VRSS",
    "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC",
    "STCK_OPRC",
    "STCK_HGPR",
    "STCK_LWPR",
    "ASKP1",
    "BIDP1",
    "CNTG_VOL",
    "ACML_VOL",
    "ACML_TR_PBMN",
    "SELN_CNTG_CSNU",
    "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU",
    "CTTR",
    "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN",
    "CCLD_DVSN",
    "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN",
    "OPRC_VRSS_PRPR",
    "HGPR_HOUR",
    "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR",
    "LWPR_HOUR",
    "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR",
    "BSOP_DATE",
    "NEW_MKOP_CLS_CODE",
    "TRHT_YN",
    "ASKP_RSQN1",
    "BIDP_RSQN1",
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL",
    "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
)

_LEVELS = range(1, 11)
_ASK_PRICES = tuple(f"ASKP{n}" for n in _LEVELS)
_BID_PRICES = tuple(f"BIDP{n}" for n in _LEVELS)
_ASK_QUANTITIES = tuple(f"ASKP_RSQN{n}" for n in _LEVELS)
_BID_QUANTITIES = tuple(f"BIDP_RSQN{n}" for n in _LEVELS)
BOOK_COLUMNS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD",
    "BSOP_HOUR",
    "HOUR_CLS_CODE",
    *_ASK_PRICES,
    *_BID_PRICES,
    *_ASK_QUANTITIES,
    *_BID_QUANTITIES,
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "OVTM_TOTAL_ASKP_RSQN",
    "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR",
    "ANTC_CNQN",
    "ANTC_VOL",
    "ANTC_CNTG_VRSS",
    "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT",
    "ACML_VOL",
    "TOTAL_ASKP_RSQN_ICDC",
    "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC",
    "OVTM_TOTAL_BIDP_ICDC",
    "STCK_DEAL_CLS_CODE",
)

COLUMNS: dict[str, tuple[str, ...]] = {TRADES: TRADE_COLUMNS, BOOK: BOOK_COLUMNS}
# A record's values in column order, picked from the dict that names them.
_trade_fields: Callable[[dict[str, str]], tuple[str, ...]] = operator.itemgetter(*TRADE_COLUMNS)
_book_fields: Callable[[dict[str, str]], tuple[str, ...]] = operator.itemgetter(*BOOK_COLUMNS)

# CCLD_DVSN: 1 buy-initiated, 3 the opening auction, 5 sell-initiated.
_BUY, _OPENING, _SELL = "1", "3", "5"
_REGULAR_SESSION = "20"  # NEW_MKOP_CLS_CODE: mock's choice for the regular session
_REGULAR_HOURS, _VI_AUCTION = "0", "C"  # HOUR_CLS_CODE of H0STASP0
_STEPS_PER_DAY = int(6.5 * 3600 / STEP_SECONDS)
_OPENING_SHARE = 0.004  # of a day's volume traded in the opening auction
_RECENT = 1024  # records (and order books) kept: every subscribed code's, for several steps

K = TypeVar("K")
V = TypeVar("V")


def direction(price: int, reference: int) -> str:
    """KIS's sign code against a reference: 2 up, 3 flat, 5 down."""
    if price > reference:
        return "2"
    return "3" if price == reference else "5"


def _percent(part: float, whole: float) -> str:
    return f"{part / whole * 100:.2f}" if whole else "0.00"


@dataclass(frozen=True)
class _Flow:
    """Who traded up to a step: the buy/sell split the simulator leaves open."""

    side: str  # CCLD_DVSN of the step's print
    buys: int  # counts of buy- and sell-initiated prints so far
    sells: int
    bought: int  # volumes so far
    sold: int
    high_step: int  # the step the day's high (low) was first reached
    low_step: int


@dataclass(frozen=True)
class _Profile:
    """Per-instrument figures outside the simulator, drawn once from the seed."""

    previous_volume: int  # yesterday's whole-day volume
    listed_shares: int


class Tape:
    """The records a realtime feed sends, per (tr_id, code, step).

    Every connection subscribed to a code asks for the same record at the same step, and a
    step's order book serves its trade record, its book record and the next step's book
    record: the most recent records and books are kept (``_RECENT`` of each), so each is
    computed once however many connections send it.
    """

    def __init__(self, market: Market, clock: MockClock) -> None:
        self.market = market
        self.clock = clock  # STCK_CNTG_HOUR etc. are the wall time of the record's step
        self._flows: dict[str, list[_Flow]] = {}
        self._profiles: dict[str, _Profile] = {}
        self._records: dict[tuple[str, str, int], tuple[str, ...]] = {}
        self._books: dict[tuple[str, int], _Levels] = {}
        self._clock_strings: dict[int, tuple[str, str]] = {}
        self._revision = market.events.revision
        self._flow_events: dict[str, tuple[MarketEvent, ...]] = {}  # what each flow saw

    def _current(self) -> None:
        """Forget what was computed before the market's events last changed: the recent
        records and books, and each code's flows from the first step its new events move
        (a day's events then cost the steps after them, not the whole day's flows again)."""
        if self._revision == self.market.events.revision:
            return
        self._revision = self.market.events.revision
        self._records.clear()
        self._books.clear()
        for code, flows in self._flows.items():
            events = self.market.events.of(code)
            del flows[steps_kept(self._flow_events.get(code, ()), events, len(flows)) :]
            self._flow_events[code] = events

    def sends(self, tr_id: str, code: str, step: int) -> bool:
        """Whether there is a ``tr_id`` record of ``code`` at ``step``: no trade record
        while the code is halted (nothing traded), a book record always."""
        return tr_id != TRADES or self.market.effect(code, step).trading

    def record(self, tr_id: str, code: str, step: int) -> tuple[str, ...]:
        self._current()
        key = (tr_id, code, step)
        found = self._records.get(key)
        if found is None:
            found = self.trade(code, step) if tr_id == TRADES else self.book(code, step)
            _keep(self._records, key, found)
        return found

    def traded(self, code: str, step: int) -> int:
        """CNTG_VOL: the volume traded at ``step`` (the opening auction's at step 0)."""
        volume = self.market.tick(code, step).volume
        return volume - self.market.tick(code, step - 1).volume if step > 0 else volume

    def trade(self, code: str, step: int) -> tuple[str, ...]:
        """The H0STCNT0 record of ``code`` at ``step`` (46 fields)."""
        instrument = self.market.instrument(code)
        tick = self.market.tick(code, step)
        top = self.market.book_top(code, step)  # the best levels and totals only
        best_ask = _written(top.best_ask) if top.best_ask else ("0", "0")
        best_bid = _written(top.best_bid) if top.best_bid else ("0", "0")
        flow = self._flow(code, step)
        profile = self._profile(instrument)
        change = tick.price - instrument.base_price
        # Yesterday by this time: its opening auction plus a steady share of the day.
        elapsed = min(step + 1, _STEPS_PER_DAY) / _STEPS_PER_DAY
        share = _OPENING_SHARE + (1 - _OPENING_SHARE) * elapsed
        same_time_yesterday = int(profile.previous_volume * share)
        values = {
            "MKSC_SHRN_ISCD": code,
            "STCK_CNTG_HOUR": self._hour(step),
            "STCK_PRPR": str(tick.price),
            "PRDY_VRSS_SIGN": day_sign(tick.price, instrument),
            "PRDY_VRSS": str(change),
            "PRDY_CTRT": _percent(change, instrument.base_price),
            "WGHN_AVRG_STCK_PRC": f"{tick.turnover / tick.volume:.2f}",
            "STCK_OPRC": str(tick.open),
            "STCK_HGPR": str(tick.high),
            "STCK_LWPR": str(tick.low),
            "ASKP1": best_ask[0],
            "BIDP1": best_bid[0],
            "CNTG_VOL": str(self.traded(code, step)),
            "ACML_VOL": str(tick.volume),
            "ACML_TR_PBMN": str(tick.turnover),
            "SELN_CNTG_CSNU": str(flow.sells),
            "SHNU_CNTG_CSNU": str(flow.buys),
            "NTBY_CNTG_CSNU": str(flow.buys - flow.sells),
            "CTTR": _percent(flow.bought, flow.sold),  # trade strength: bought per 100 sold
            "SELN_CNTG_SMTN": str(flow.sold),
            "SHNU_CNTG_SMTN": str(flow.bought),
            "CCLD_DVSN": flow.side,
            "SHNU_RATE": _percent(flow.bought, flow.bought + flow.sold),
            "PRDY_VOL_VRSS_ACML_VOL_RATE": _percent(tick.volume, profile.previous_volume),
            "OPRC_HOUR": self._hour(0),
            "OPRC_VRSS_PRPR_SIGN": direction(tick.price, tick.open),
            "OPRC_VRSS_PRPR": str(tick.price - tick.open),
            "HGPR_HOUR": self._hour(flow.high_step),
            "HGPR_VRSS_PRPR_SIGN": direction(tick.price, tick.high),
            "HGPR_VRSS_PRPR": str(tick.price - tick.high),
            "LWPR_HOUR": self._hour(flow.low_step),
            "LWPR_VRSS_PRPR_SIGN": direction(tick.price, tick.low),
            "LWPR_VRSS_PRPR": str(tick.price - tick.low),
            "BSOP_DATE": self._date(step),
            "NEW_MKOP_CLS_CODE": _REGULAR_SESSION,
            "TRHT_YN": "N",
            "ASKP_RSQN1": best_ask[1],
            "BIDP_RSQN1": best_bid[1],
            "TOTAL_ASKP_RSQN": str(top.asks),
            "TOTAL_BIDP_RSQN": str(top.bids),
            "VOL_TNRT": f"{tick.volume / profile.listed_shares * 100:.2f}",
            "PRDY_SMNS_HOUR_ACML_VOL": str(same_time_yesterday),
            "PRDY_SMNS_HOUR_ACML_VOL_RATE": _percent(tick.volume, same_time_yesterday),
            "HOUR_CLS_CODE": "0",  # regular hours
            "MRKT_TRTM_CLS_CODE": "N",
            "VI_STND_PRC": str(tick.open),  # static VI's reference: the opening auction price
        }
        return _trade_fields(values)

    def book(self, code: str, step: int) -> tuple[str, ...]:
        """The H0STASP0 record of ``code`` at ``step`` (59 fields); missing levels (near
        the daily limits) are "0", as the broker's REST order book shows them."""
        instrument = self.market.instrument(code)
        tick = self.market.tick(code, step)
        book = self._levels(code, step)
        before = self._levels(code, step - 1) if step > 0 else book
        change = tick.price - instrument.base_price
        trading = self.market.effect(code, step).trading
        values = {
            "MKSC_SHRN_ISCD": code,
            "BSOP_HOUR": self._hour(step),
            "HOUR_CLS_CODE": _REGULAR_HOURS if trading else _VI_AUCTION,
            **dict(zip(_ASK_PRICES, book.ask_side[0], strict=True)),
            **dict(zip(_BID_PRICES, book.bid_side[0], strict=True)),
            **dict(zip(_ASK_QUANTITIES, book.ask_side[1], strict=True)),
            **dict(zip(_BID_QUANTITIES, book.bid_side[1], strict=True)),
            "TOTAL_ASKP_RSQN": str(book.asks),
            "TOTAL_BIDP_RSQN": str(book.bids),
            "OVTM_TOTAL_ASKP_RSQN": "0",
            "OVTM_TOTAL_BIDP_RSQN": "0",
            # The expected-execution block mirrors the broker's REST output2.
            "ANTC_CNPR": str(tick.price),
            "ANTC_CNQN": "0",
            "ANTC_VOL": "0",
            "ANTC_CNTG_VRSS": str(change),
            "ANTC_CNTG_VRSS_SIGN": day_sign(tick.price, instrument),
            "ANTC_CNTG_PRDY_CTRT": _percent(change, instrument.base_price),
            "ACML_VOL": str(tick.volume),
            "TOTAL_ASKP_RSQN_ICDC": str(book.asks - before.asks),
            "TOTAL_BIDP_RSQN_ICDC": str(book.bids - before.bids),
            "OVTM_TOTAL_ASKP_ICDC": "0",
            "OVTM_TOTAL_BIDP_ICDC": "0",
            "STCK_DEAL_CLS_CODE": "00",  # documented as unused
        }
        return _book_fields(values)

    def _levels(self, code: str, step: int) -> _Levels:
        self._current()
        key = (code, step)
        found = self._books.get(key)
        if found is None:
            found = _Levels(self.market.order_book(code, step))
            _keep(self._books, key, found)
        return found

    def _hour(self, step: int) -> str:
        return self._clock_strings_at(step)[0]

    def _date(self, step: int) -> str:
        return self._clock_strings_at(step)[1]

    def _clock_strings_at(self, step: int) -> tuple[str, str]:
        """(HHMMSS, YYYYMMDD) of the step's wall time: four a trade record, formatted once."""
        found = self._clock_strings.get(step)
        if found is None:
            wall = self.clock.wall(step * STEP_SECONDS)
            found = (wall.strftime("%H%M%S"), wall.strftime("%Y%m%d"))
            _keep(self._clock_strings, step, found)
        return found

    def _flow(self, code: str, step: int) -> _Flow:
        self._current()
        flows = self._flows.get(code)
        if flows is None:
            flows = self._flows[code] = []
            self._flow_events[code] = self.market.events.of(code)
        while len(flows) <= step:
            flows.append(self._next_flow(code, len(flows), flows[-1] if flows else None))
        return flows[step]

    def _next_flow(self, code: str, step: int, last: _Flow | None) -> _Flow:
        tick = self.market.tick(code, step)
        if last is None:
            return _Flow(_OPENING, 0, 0, 0, 0, 0, 0)
        if not self.market.effect(code, step).trading:
            return last  # halted: no print, the counts stand
        previous = self.market.tick(code, step - 1)
        if tick.price != previous.price:
            side = _BUY if tick.price > previous.price else _SELL
        else:  # an unchanged price: either side, drawn per step so order doesn't matter
            coin = random.Random(f"squall-feed:{self.market.seed}:{code}:side:{step}")
            side = _BUY if coin.random() < 0.5 else _SELL
        volume = self.traded(code, step)
        buy = side == _BUY
        return _Flow(
            side=side,
            buys=last.buys + buy,
            sells=last.sells + (not buy),
            bought=last.bought + (volume if buy else 0),
            sold=last.sold + (0 if buy else volume),
            high_step=step if tick.high > previous.high else last.high_step,
            low_step=step if tick.low < previous.low else last.low_step,
        )

    def _profile(self, instrument: Instrument) -> _Profile:
        profile = self._profiles.get(instrument.code)
        if profile is None:
            rng = random.Random(f"squall-feed:{self.market.seed}:{instrument.code}:profile")
            profile = _Profile(
                previous_volume=rng.randint(3_000_000, 12_000_000),
                listed_shares=rng.randint(50_000_000, 6_000_000_000),
            )
            self._profiles[instrument.code] = profile
        return profile


def _keep(recent: dict[K, V], key: K, value: V) -> None:
    """Remember ``value``, forgetting the oldest entry beyond ``_RECENT``."""
    recent[key] = value
    if len(recent) > _RECENT:
        del recent[next(iter(recent))]


class _Levels:
    """One step's book as the records write it: each side's total, its best level, and
    its ten levels ("0" past the book's depth, near the daily limits). Kept per step for
    its trade record, its book record and the next step's book record; the ten levels are
    formatted only when a book record asks, since a trade record shows only the best."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.asks = sum(quantity for _, quantity in book.asks)  # total quantities
        self.bids = sum(quantity for _, quantity in book.bids)

    @property
    def best_ask(self) -> tuple[str, str]:
        """(price, quantity) of the best ask, ("0", "0") when there is none."""
        return _written(self.book.asks[0]) if self.book.asks else ("0", "0")

    @property
    def best_bid(self) -> tuple[str, str]:
        return _written(self.book.bids[0]) if self.book.bids else ("0", "0")

    @functools.cached_property
    def ask_side(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(prices, quantities) of the ten ask levels."""
        return _side(self.book.asks)

    @functools.cached_property
    def bid_side(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return _side(self.book.bids)


def _written(level: BookLevel) -> tuple[str, str]:
    return str(level.price), str(level.quantity)


def _side(rows: tuple[BookLevel, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    missing = ("0",) * (len(_LEVELS) - len(rows))
    prices = tuple(str(level.price) for level in rows) + missing
    return prices, tuple(str(level.quantity) for level in rows) + missing
