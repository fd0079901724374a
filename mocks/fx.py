"""The simulated FX venue: four currencies, six pairs, cross rates that agree.

A multi-currency venue for the triangular-arbitrage detector to watch. The decision: fiat
currencies around the won, KRW, USD, JPY and EUR, every pair of them listed once, the way
an FX venue quotes them (one unit of the first currency in the second):

    USD/KRW  JPY/KRW  EUR/KRW  EUR/USD  USD/JPY  EUR/JPY

Four currencies give four triangles, three of them through KRW (the desk's capital
currency), each pair in two of them, so a mispriced pair always opens a cycle from KRW.
Crypto pairs (KRW/BTC/ETH) would do as well; fiat keeps the prices readable.

How the prices stay consistent: each currency has a value in won that follows a seeded
random path (one step a second, like the stocks' ``mocks.market``; KRW is worth 1), and
every pair's mid is the ratio of its currencies' values, so the cross rates agree exactly.
Each pair is quoted around its mid with a small half-spread, its bid rounded down and its
ask rounded up to the pair's decimals: rounding only widens a spread, so converting around
any triangle at these quotes returns less than it started with, and a consistent market
has no arbitrage to find, however the paths move.

A ``mispricing`` market event (``mocks.market_events``) moves one pair's quotes ``pct``
percent off its mid for its window: that pair then disagrees with the cross rate of the
other two, which is the arbitrage. Like the stocks, a quote is a pure function of (seed,
pair, step, events): the same seed gives the same venue, and events of one pair never
touch another.

The numbers (reference levels, volatility, spreads, decimals) are ballpark figures chosen
to look like an FX screen, not market data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from mocks.market_events import UNDISTURBED, Effect, MarketEvent, MarketEvents, effect_at

HOME = "KRW"  # every currency's value is in won
# Won per unit of each other currency, the seed jitters around it.
REFERENCES: dict[str, float] = {"USD": 1_380.0, "JPY": 9.2, "EUR": 1_500.0}


@dataclass(frozen=True)
class Pair:
    """A listed pair: ``name`` "BASE/QUOTE" is one BASE in QUOTE, quoted to ``decimals``
    places with ``half_spread_bps`` basis points of the mid either side."""

    name: str
    decimals: int
    half_spread_bps: float

    @property
    def base(self) -> str:
        return self.name.partition("/")[0]

    @property
    def quote(self) -> str:
        return self.name.partition("/")[2]


PAIRS: tuple[Pair, ...] = (
    Pair("USD/KRW", 2, 1.5),
    Pair("JPY/KRW", 4, 2.0),
    Pair("EUR/KRW", 2, 2.0),
    Pair("EUR/USD", 5, 0.5),
    Pair("USD/JPY", 3, 0.5),
    Pair("EUR/JPY", 3, 1.0),
)
PAIR_NAMES: tuple[str, ...] = tuple(pair.name for pair in PAIRS)

# Per-step sigma of a currency's value: about 0.6 % a day over 24 hours, scaled up (as the
# stocks' paths are) so that a few minutes of a scenario show movement.
_SIGMA = 0.006 / math.sqrt(86_400) * 8
_SIZES = (100_000, 5_000_000)  # the amount at the best bid or ask, in the base currency


class UnknownPair(KeyError):
    """The pair is not listed on the simulated FX venue."""

    def __init__(self, pair: str) -> None:
        super().__init__(pair)
        self.pair = pair

    def __str__(self) -> str:
        return f"{self.pair} is not listed on the simulated FX venue; listed: " + ", ".join(
            PAIR_NAMES
        )


@dataclass(frozen=True)
class FxQuote:
    """One pair at one step: the best ``bid`` and ``ask`` (one base in quote currency),
    their sizes, and the session so far: ``last`` (the mid, rounded), ``low``/``high`` of
    the mids, ``vwap`` (their mean: every step trades the same), ``volume`` traded in the
    base currency, and ``change``/``change_pct`` against step 0. The session stands in for
    the 24 hours a venue's ticker reports."""

    pair: str
    step: int
    bid: float
    ask: float
    bid_qty: float
    ask_qty: float
    last: float
    low: float
    high: float
    vwap: float
    volume: float
    change: float
    change_pct: float


@dataclass
class _Quotes:
    """One pair's quotes step by step, computed from the events they were made with."""

    events: tuple[MarketEvent, ...]
    steps: list[FxQuote] = field(default_factory=list)


class FxMarket:
    """The venue's pairs and their seeded quotes; ``events`` may be shared with the stock
    market (``mocks.market.Market`` hands it its own), so one control plane injects both."""

    def __init__(self, seed: int = 0, events: MarketEvents | None = None) -> None:
        self.seed = seed
        self.events = events if events is not None else MarketEvents()
        self.pairs: dict[str, Pair] = {pair.name: pair for pair in PAIRS}
        self._values: dict[str, tuple[random.Random, list[float]]] = {}
        self._quotes: dict[str, _Quotes] = {}

    def pair(self, name: str) -> Pair:
        try:
            return self.pairs[name]
        except KeyError:
            raise UnknownPair(name) from None

    def value(self, currency: str, step: int) -> float:
        """What one unit of ``currency`` is worth in won at ``step`` (KRW: 1)."""
        if currency == HOME:
            return 1.0
        held = self._values.get(currency)
        if held is None:
            rng = random.Random(f"squall:{self.seed}:fx:{currency}")
            opening = REFERENCES[currency] * rng.uniform(0.97, 1.03)
            held = self._values[currency] = (rng, [opening])
        rng, path = held
        while len(path) <= step:
            path.append(path[-1] * math.exp(rng.gauss(0, _SIGMA)))
        return path[step]

    def mid(self, name: str, step: int) -> float:
        """The pair's mid at ``step`` as its currencies' values imply it, before events."""
        pair = self.pair(name)
        return self.value(pair.base, step) / self.value(pair.quote, step)

    def effect(self, name: str, step: int) -> Effect:
        events = self.events.of(name)
        return effect_at(events, step) if events else UNDISTURBED

    def quote(self, name: str, step: int) -> FxQuote:
        """The pair's quote at ``step``, its mispricings applied; computed once, then cached
        (until the pair's events change)."""
        pair = self.pair(name)
        events = self.events.of(name)
        held = self._quotes.get(name)
        if held is None or held.events is not events:
            held = self._quotes[name] = _Quotes(events)
        while len(held.steps) <= step:
            last = held.steps[-1] if held.steps else None
            held.steps.append(self._next(pair, len(held.steps), last))
        return held.steps[step]

    def _next(self, pair: Pair, step: int, last: FxQuote | None) -> FxQuote:
        mid = self.mid(pair.name, step) * self.effect(pair.name, step).factor
        half = mid * pair.half_spread_bps / 10_000
        rng = random.Random(f"squall:{self.seed}:fx:{pair.name}:{step}")
        traded = rng.uniform(*_SIZES) / 10
        rounded = _rounded(mid, pair.decimals, ROUND_FLOOR)
        opening = rounded if last is None else last.last - last.change
        volume = traded if last is None else last.volume + traded
        vwap = rounded if last is None else (last.vwap * last.volume + rounded * traded) / volume
        return FxQuote(
            pair=pair.name,
            step=step,
            bid=_rounded(mid - half, pair.decimals, ROUND_FLOOR),
            ask=_rounded(mid + half, pair.decimals, ROUND_CEILING),
            bid_qty=round(rng.uniform(*_SIZES), 2),
            ask_qty=round(rng.uniform(*_SIZES), 2),
            last=rounded,
            low=rounded if last is None else min(last.low, rounded),
            high=rounded if last is None else max(last.high, rounded),
            vwap=round(vwap, pair.decimals + 2),
            volume=round(volume, 2),
            change=round(rounded - opening, pair.decimals),
            change_pct=round((rounded - opening) / opening * 100, 2),
        )


def _rounded(value: float, decimals: int, rounding: str) -> float:
    """``value`` on the pair's grid, rounded the way given (down for bids, up for asks)."""
    exponent = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(exponent, rounding=rounding))
