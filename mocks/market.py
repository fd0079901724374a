"""A seeded market simulator: real KRX instruments, price paths on the loop clock.

The same seed gives the same world: instrument base prices, the price at every step and the
order book at every step are pure functions of (seed, code, step, events). Requests
arriving in a different order or at a different rate never change what a later step looks
like, so a scenario's journal is reproducible. Market events a scenario injects (a gap,
limit-up/limit-down, a VI halt: ``mocks.market_events``) reshape one code's undisturbed
path; a code without events follows its undisturbed path exactly. Beside the stocks, the
world has an FX venue (``fx``: ``mocks.fx``) on the same seed and the same events, whose
pairs a ``mispricing`` event moves.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from mocks import krx
from mocks.fx import FxMarket
from mocks.market_events import (
    UNDISTURBED,
    Effect,
    MarketEvent,
    MarketEvents,
    Mispricing,
    effect_at,
    steps_kept,
)

# Real KOSPI/KOSDAQ codes and names, with a reference price the seed jitters around.
# Prices are ballpark figures chosen to cover every KRX tick band, not market data.
LISTINGS: tuple[tuple[str, str, int], ...] = (
    ("005930", "삼성전자", 71_000),
    ("000660", "SK하이닉스", 182_000),
    ("373220", "LG에너지솔루션", 395_000),
    ("207940", "삼성바이오로직스", 812_000),
    ("005380", "현대차", 241_000),
    ("000270", "기아", 101_000),
    ("068270", "셀트리온", 178_000),
    ("035420", "NAVER", 196_000),
    ("035720", "카카오", 44_850),
    ("051910", "LG화학", 352_000),
    ("006400", "삼성SDI", 298_000),
    ("005490", "POSCO홀딩스", 382_000),
    ("105560", "KB금융", 81_200),
    ("055550", "신한지주", 49_750),
    ("012330", "현대모비스", 232_500),
    ("066570", "LG전자", 91_300),
    ("015760", "한국전력", 21_950),
    ("017670", "SK텔레콤", 54_600),
    ("030200", "KT", 39_900),
    ("033780", "KT&G", 97_800),
    ("011200", "HMM", 17_890),
    ("003490", "대한항공", 22_150),
    ("010140", "삼성중공업", 10_480),
    ("034020", "두산에너빌리티", 19_960),
    ("323410", "카카오뱅크", 23_400),
    ("042700", "한미반도체", 118_300),
    ("086520", "에코프로", 96_500),
    ("247540", "에코프로비엠", 187_400),
    ("293490", "카카오게임즈", 19_870),
    ("003620", "KG모빌리티", 4_985),
    ("000890", "보해양조", 1_013),
)

STEP_SECONDS = 1.0  # one price step per second of loop time
_DAILY_VOLATILITY = 0.02  # per-step sigma is derived from this over a trading day
_STEPS_PER_DAY = 6.5 * 3600 / STEP_SECONDS


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    base_price: int  # yesterday's close: the reference for limits and change
    lower_limit: int
    upper_limit: int
    per: float
    pbr: float
    eps: int
    bps: int
    w52_high: int
    w52_low: int


@dataclass(frozen=True)
class Tick:
    """The state of one instrument at one step."""

    code: str
    step: int
    price: int
    open: int
    high: int
    low: int
    volume: int  # cumulative for the day
    turnover: int  # cumulative traded value in won


class BookLevel(NamedTuple):
    # A named tuple, not a dataclass: a feed builds twenty of these a second per code.
    price: int
    quantity: int


@dataclass(frozen=True)
class OrderBook:
    code: str
    step: int
    asks: tuple[BookLevel, ...]  # best (lowest) first
    bids: tuple[BookLevel, ...]  # best (highest) first


class BookTop(NamedTuple):
    """What a trade record shows of a step's book: each side's best level (None when the
    side is empty) and its total quantity."""

    best_ask: BookLevel | None
    best_bid: BookLevel | None
    asks: int
    bids: int


def day_sign(price: int, instrument: Instrument) -> str:
    """KIS's sign of ``price`` against the day (prdy_vrss_sign in REST, PRDY_VRSS_SIGN in the
    feed): 1 at the upper limit, 4 at the lower, else 2 up, 3 flat, 5 down vs the base."""
    if price >= instrument.upper_limit:
        return "1"
    if price <= instrument.lower_limit:
        return "4"
    if price > instrument.base_price:
        return "2"
    return "3" if price == instrument.base_price else "5"


class UnknownInstrument(KeyError):
    """The code is six digits but not listed in this simulated market."""


class EventInThePast(ValueError):
    """A market event would start before the step in progress: it would rewrite prices
    that were already quoted, filled and sent."""


@dataclass
class _Path:
    rng: random.Random
    ticks: list[Tick] = field(default_factory=list)


@dataclass
class _Shaped:
    """A code's path with its events applied, computed from the events it holds."""

    events: tuple[MarketEvent, ...]
    ticks: list[Tick] = field(default_factory=list)


# A limit-locked stock's queue at the limit price: far more than a normal level holds.
_LIMIT_QUEUE = (200_000, 2_000_000)
_BOOK_DEPTH = 10  # the deepest book drawn: KIS shows ten levels a side
# 64 bytes of one hash: a quantity per level (16 bits each) and a limit queue (32 bits).
_BOOK_DRAWS = struct.Struct(f"<{2 * _BOOK_DEPTH}H6I")


class Market:
    """Instruments, their seeded price paths and the events injected into them.

    ``events`` may be shared with another ``Market`` (the feed's beside the broker's), so
    both apply what one control plane injects.
    """

    def __init__(
        self,
        seed: int = 0,
        listings: tuple[tuple[str, str, int], ...] = LISTINGS,
        events: MarketEvents | None = None,
    ):
        self.seed = seed
        self.instruments: dict[str, Instrument] = {}
        for code, name, reference in listings:
            self.instruments[code] = self._make_instrument(code, name, reference)
        self.events = events if events is not None else MarketEvents()
        self.fx = FxMarket(seed, self.events)
        self._paths: dict[str, _Path] = {}
        self._shaped: dict[str, _Shaped] = {}

    def _make_instrument(self, code: str, name: str, reference: int) -> Instrument:
        # String seeds hash through SHA-512, so they are stable across runs and processes.
        rng = random.Random(f"squall:{self.seed}:{code}:listing")
        base = krx.round_to_tick(reference * rng.uniform(0.9, 1.1))
        lower, upper = krx.daily_limits(base)
        eps = max(1, int(base / rng.uniform(6, 40)))
        bps = max(1, int(base / rng.uniform(0.5, 3.0)))
        return Instrument(
            code=code,
            name=name,
            base_price=base,
            lower_limit=lower,
            upper_limit=upper,
            per=round(base / eps, 2),
            pbr=round(base / bps, 2),
            eps=eps,
            bps=bps,
            w52_high=krx.round_to_tick(base * rng.uniform(1.05, 1.6)),
            w52_low=krx.round_to_tick(base * rng.uniform(0.5, 0.95)),
        )

    def instrument(self, code: str) -> Instrument:
        try:
            return self.instruments[code]
        except KeyError:
            raise UnknownInstrument(code) from None

    def step_at(self, elapsed: float) -> int:
        """The step index for ``elapsed`` seconds of loop time since the market opened."""
        return max(0, int(elapsed // STEP_SECONDS))

    def inject(self, event: MarketEvent, now: float) -> MarketEvent:
        """Add ``event`` at clock reading ``now``; returns it as stored, its start pinned
        to the next step when it gave none. Raises UnknownInstrument for a code not
        listed here, ``mocks.fx.UnknownPair`` for a pair the FX venue does not list, and
        EventInThePast for a start before the step in progress (one that starts in the
        step in progress may differ from a quote already given in it)."""
        if isinstance(event, Mispricing):
            self.fx.pair(event.pair)
        else:
            self.instrument(event.code)
        current = self.step_at(now)
        if event.at is None:
            event = event.model_copy(update={"at": math.ceil((current + 1) * STEP_SECONDS)})
        elif self.step_at(event.at) < current:
            raise EventInThePast(
                f"a {event.kind} of {event.subject} at {event.at} s would rewrite prices already "
                f"quoted (the clock is at {now:.1f} s): give at >= {current}, or leave at out "
                "for the next second"
            )
        self.events.add(event)
        return event

    def effect(self, code: str, step: int) -> Effect:
        """What the injected events do to ``code`` at ``step`` (halted, pinned, gapped)."""
        events = self.events.of(code)
        return effect_at(events, step) if events else UNDISTURBED

    def tick(self, code: str, step: int) -> Tick:
        """The state of ``code`` at ``step``, its events applied; computed once, then
        cached (until the code's events change)."""
        events = self.events.of(code)
        if not events:
            return self._undisturbed(code, step)
        instrument = self.instrument(code)
        shaped = self._shaped.get(code)
        if shaped is None or shaped.events is not events:
            shaped = self._shaped[code] = _reshaped(shaped, events)
        while len(shaped.ticks) <= step:
            last = shaped.ticks[-1] if shaped.ticks else None
            shaped.ticks.append(self._shape(instrument, events, len(shaped.ticks), last))
        return shaped.ticks[step]

    def _shape(
        self,
        instrument: Instrument,
        events: tuple[MarketEvent, ...],
        step: int,
        last: Tick | None,
    ) -> Tick:
        """One step of the disturbed path: the undisturbed step's price moved by the
        events, and its traded volume (none while halted) at that price."""
        code = instrument.code
        base = self._undisturbed(code, step)
        traded = base.volume - (self._undisturbed(code, step - 1).volume if step else 0)
        effect = effect_at(events, step)
        if not effect.trading and last is not None:
            return replace(last, step=step)  # the last trade stands; nothing trades
        if effect.pin == "upper":
            price = instrument.upper_limit
        elif effect.pin == "lower":
            price = instrument.lower_limit
        elif effect.factor != 1:
            price = _within(krx.round_to_tick(base.price * effect.factor), instrument)
        else:
            price = base.price
        if last is None:
            return Tick(code, 0, price, price, price, price, traded, traded * price)
        return Tick(
            code=code,
            step=step,
            price=price,
            open=last.open,
            high=max(last.high, price),
            low=min(last.low, price),
            volume=last.volume + traded,
            turnover=last.turnover + traded * price,
        )

    def _undisturbed(self, code: str, step: int) -> Tick:
        """The seeded path of ``code`` without any event; computed once, then cached."""
        instrument = self.instrument(code)
        path = self._paths.get(code)
        if path is None:
            path = _Path(random.Random(f"squall:{self.seed}:{code}:path"))
            self._paths[code] = path
        while len(path.ticks) <= step:
            path.ticks.append(self._next(instrument, path))
        return path.ticks[step]

    def _next(self, instrument: Instrument, path: _Path) -> Tick:
        rng = path.rng
        if not path.ticks:
            opening = krx.round_to_tick(instrument.base_price * math.exp(rng.gauss(0, 0.01)))
            opening = _within(opening, instrument)
            volume = rng.randint(1_000, 50_000)
            return Tick(
                instrument.code, 0, opening, opening, opening, opening, volume, volume * opening
            )
        last = path.ticks[-1]
        sigma = _DAILY_VOLATILITY / math.sqrt(_STEPS_PER_DAY)
        raw = last.price * math.exp(rng.gauss(0, sigma * 8))
        price = _within(krx.round_to_tick(raw), instrument)
        # A trade is of one share at least: a zero would repeat the accumulated volume,
        # which a client rightly reads as the same trade again (a duplicate).
        traded = max(1, int(rng.lognormvariate(5, 1.2)))
        return Tick(
            code=instrument.code,
            step=last.step + 1,
            price=price,
            open=last.open,
            high=max(last.high, price),
            low=min(last.low, price),
            volume=last.volume + traded,
            turnover=last.turnover + traded * price,
        )

    def order_book(self, code: str, step: int, depth: int = _BOOK_DEPTH) -> OrderBook:
        """Ten levels each side around the step's price, clipped at the daily limits.

        Pinned at a limit by an event, the book is one-sided, as KRX shows a limit-locked
        stock: at limit-up no asks, and the best bid is the upper limit with a long queue
        of buyers; at limit-down no bids, and the best ask is the lower limit."""
        if not 0 <= depth <= _BOOK_DEPTH:
            raise ValueError(f"a book is at most {_BOOK_DEPTH} levels a side, not {depth}")
        instrument = self.instrument(code)
        price = self.tick(code, step).price
        draws = _book_draws(self.seed, code, step)
        asks: list[BookLevel] = []
        level = price
        while len(asks) < depth:
            level += krx.tick_size(level)
            if level > instrument.upper_limit:
                break
            asks.append(BookLevel(level, 1 + draws[len(asks)] % 5_000))
        bids: list[BookLevel] = []
        level = price
        while len(bids) < depth and level > instrument.lower_limit:
            level = krx.round_to_tick(level - 1, down=True)
            if level < instrument.lower_limit:
                break
            bids.append(BookLevel(level, 1 + draws[_BOOK_DEPTH + len(bids)] % 5_000))
        effect = self.effect(code, step)
        pin = effect.pin if effect.trading else None  # a halt's auction book is two-sided
        low, high = _LIMIT_QUEUE
        queued = low + draws[2 * _BOOK_DEPTH] % (high - low + 1)
        if pin == "upper":
            asks, bids = [], [BookLevel(instrument.upper_limit, queued), *bids[: depth - 1]]
        elif pin == "lower":
            asks, bids = [BookLevel(instrument.lower_limit, queued), *asks[: depth - 1]], []
        return OrderBook(code, step, tuple(asks), tuple(bids))

    def book_top(self, code: str, step: int) -> BookTop:
        """``order_book(code, step)``'s best levels and totals, without building the book
        when it is a full ten levels a side (the usual case, away from the limits): a feed
        writes these into every trade record, seventy thousand a simulated day."""
        instrument = self.instrument(code)
        price = self.tick(code, step).price
        effect = self.effect(code, step)
        if (effect.pin is None or not effect.trading) and _full_ladder(price, instrument):
            draws = _book_draws(self.seed, code, step)
            asks = [1 + draw % 5_000 for draw in draws[:_BOOK_DEPTH]]
            bids = [1 + draw % 5_000 for draw in draws[_BOOK_DEPTH : 2 * _BOOK_DEPTH]]
            best_ask = BookLevel(price + krx.tick_size(price), asks[0])
            best_bid = BookLevel(krx.round_to_tick(price - 1, down=True), bids[0])
            return BookTop(best_ask, best_bid, sum(asks), sum(bids))
        book = self.order_book(code, step)
        return BookTop(
            book.asks[0] if book.asks else None,
            book.bids[0] if book.bids else None,
            sum(quantity for _, quantity in book.asks),
            sum(quantity for _, quantity in book.bids),
        )


def _reshaped(shaped: _Shaped | None, events: tuple[MarketEvent, ...]) -> _Shaped:
    """The path for ``events``, keeping the steps of ``shaped`` they leave alone."""
    if shaped is None:
        return _Shaped(events)
    return _Shaped(events, shaped.ticks[: steps_kept(shaped.events, events, len(shaped.ticks))])


def _full_ladder(price: int, instrument: Instrument) -> bool:
    """Whether ten levels fit on each side of ``price`` inside the daily limits."""
    tick = krx.tick_size(price)
    ask = price + _BOOK_DEPTH * tick
    if krx.tick_size(ask - tick) != tick:  # the ladder crosses a tick band: walk it
        ask = price
        for _ in range(_BOOK_DEPTH):
            ask += krx.tick_size(ask)
    best_bid = krx.round_to_tick(price - 1, down=True)
    step = krx.tick_size(best_bid)
    bid = best_bid - (_BOOK_DEPTH - 1) * step
    if krx.tick_size(bid) != step:
        bid = price
        for _ in range(_BOOK_DEPTH):
            bid = krx.round_to_tick(bid - 1, down=True)
    return ask <= instrument.upper_limit and bid >= instrument.lower_limit and bid > 0


def _book_draws(seed: int, code: str, step: int) -> tuple[int, ...]:
    """The seeded numbers of one step's book: one hash, not a seeded ``random.Random``
    and its twenty draws, which cost a feed several times as much per record."""
    key = f"squall:{seed}:{code}:book:{step}".encode()
    return _BOOK_DRAWS.unpack(hashlib.blake2b(key, digest_size=64).digest())


def _within(price: int, instrument: Instrument) -> int:
    """``price`` clamped to the day's limits (both on the tick grid)."""
    return min(max(price, instrument.lower_limit), instrument.upper_limit)
