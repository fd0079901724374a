"""A triangular-arbitrage detector over a multi-currency venue.

Three currencies, three pairs: converting the capital currency into a second, that into a
third and back may return more than it started with. Every time a pair's quote changes the
detector re-prices each cycle through three currencies that uses that pair and starts and
ends in ``base_currency`` (the currency the capital is held in; triangles without it are
not traded), in both directions:

- converting A into B through pair ``A/B`` sells A at the bid: ``rate = bid``;
  through pair ``B/A`` it buys B at the ask: ``rate = 1 / ask`` (if a venue lists both, the
  better rate is used);
- ``gross_rate`` is the product of the three rates; ``net_rate`` is that after the fee of
  each leg, ``gross_rate * (1 - fee_bps / 10_000) ** 3``;
- a cycle with ``net_rate > 1 + min_edge`` is an ``Opportunity``: ``est_profit`` is
  ``base_capital * (net_rate - 1)`` in ``base_currency``.

A quote older than ``max_age_s`` of loop time (against the quote that triggered the
evaluation, or the ``now`` the caller passes) is stale and not priced: a cycle with a stale
leg is not reported. Quotes carry no sizes, so ``est_profit`` assumes the whole capital
fills at the quoted prices; the executor must check depth.

Its input, ``RateQuote``, comes from the rate feed (``system.market.RateFeedClient``) and
lives beside ``PriceUpdate`` in ``system.market``; it is re-exported here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from system.market import PriceUpdate, RateQuote
from system.trading.detectors.base import Side, Signal, signal_id

__all__ = [
    "Leg",
    "Opportunity",
    "RateDetector",
    "RateQuote",
    "TriangularArbitrageDetector",
    "TriangularParams",
]


@dataclass(frozen=True)
class Leg:
    """One conversion of a cycle: ``side`` is buying or selling the pair's base currency,
    at ``price`` (the ask when buying, the bid when selling); ``rate`` is how much of
    ``target`` one unit of ``source`` becomes, before fees."""

    pair: str
    side: Side
    price: float
    source: str
    target: str
    rate: float


@dataclass(frozen=True)
class Opportunity:
    """A cycle worth trading, priced when ``updated_pair`` changed at loop time ``at``.

    ``cycle`` reads like ``"KRW->USD->JPY->KRW"``; ``est_profit`` and ``allocated_capital``
    are in its first currency. ``opportunity_id`` derives from ``detector``, ``cycle`` and
    ``at``: a replay gives the same ids.
    """

    detector: str
    cycle: str
    updated_pair: str
    legs: tuple[Leg, Leg, Leg]
    gross_rate: float
    net_rate: float
    est_profit: float
    allocated_capital: float
    at: float
    opportunity_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "opportunity_id", signal_id(self.detector, self.cycle, self.at))


@runtime_checkable
class RateDetector(Protocol):
    """A detector fed currency-pair quotes (rather than, or besides, stock prices)."""

    name: str

    def on_rate(self, quote: RateQuote, *, now: float | None = None) -> list[Opportunity]: ...


@dataclass(frozen=True)
class TriangularParams:
    """The triangular-arbitrage detector's parameters.

    ``base_currency`` ("KRW"): where every cycle starts and ends; the capital's currency.
    ``base_capital`` (1_000_000.0): the capital allotted to one cycle, in ``base_currency``.
    ``fee_bps`` (10.0): the fee of each leg, in basis points of what it converts.
    ``min_edge`` (0.0001): the least net gain worth reporting, as a fraction (1 bp), so
    float noise around 1.0 is never an opportunity.
    ``max_age_s`` (2.0): the oldest a leg's quote may be, in seconds of loop time.
    """

    base_currency: str = "KRW"
    base_capital: float = 1_000_000.0
    fee_bps: float = 10.0
    min_edge: float = 0.0001
    max_age_s: float = 2.0

    def __post_init__(self) -> None:
        problems = []
        if not self.base_currency or "/" in self.base_currency:
            problems.append(f"base_currency must be a currency code, got {self.base_currency!r}")
        if not self.base_capital > 0:
            problems.append(f"base_capital must be positive, got {self.base_capital}")
        if not 0 <= self.fee_bps < 10_000:
            problems.append(f"fee_bps must be in [0, 10000), got {self.fee_bps}")
        if not self.min_edge >= 0:
            problems.append(f"min_edge must be 0 or more, got {self.min_edge}")
        if not self.max_age_s >= 0:
            problems.append(f"max_age_s must be 0 or more, got {self.max_age_s}")
        if problems:
            raise ValueError("invalid triangular-arbitrage parameters: " + "; ".join(problems))


class TriangularArbitrageDetector:
    """Reports every profitable cycle through the pair that just changed (see the module).

    Each quote is re-evaluated on its own: an edge that lasts over several quotes is
    reported for each of them, under different ids; acting once is the consumer's job.
    It watches no stocks: ``on_price`` returns nothing, so it fits where a ``Detector`` does.
    """

    def __init__(self, params: TriangularParams | None = None, *, name: str = "triangular") -> None:
        self.name = name
        self.params = params or TriangularParams()
        self._quotes: dict[str, RateQuote] = {}
        self._pairs: dict[str, dict[str, list[str]]] = {}  # currency -> other -> pairs

    def on_price(self, update: PriceUpdate) -> list[Signal]:
        return []

    def reset(self) -> None:
        """Forget every quote."""
        self._quotes.clear()
        self._pairs.clear()

    def on_rate(self, quote: RateQuote, *, now: float | None = None) -> list[Opportunity]:
        """Store ``quote`` and return the opportunities through its pair, best first.

        ``now`` (loop time) defaults to the quote's own ``at``. A quote older than the one
        already held for its pair is ignored.
        """
        held = self._quotes.get(quote.pair)
        if held is not None and quote.at < held.at:
            return []
        if held is None:
            self._pairs.setdefault(quote.base, {}).setdefault(quote.quote, []).append(quote.pair)
            self._pairs.setdefault(quote.quote, {}).setdefault(quote.base, []).append(quote.pair)
        self._quotes[quote.pair] = quote
        now = quote.at if now is None else now

        home = self.params.base_currency
        if home in (quote.base, quote.quote):
            other = quote.quote if quote.base == home else quote.base
            triangles = [
                (other, third)
                for third in sorted(self._pairs.get(other, {}))
                if third not in (home, other) and third in self._pairs.get(home, {})
            ]
        else:
            triangles = [(quote.base, quote.quote)]

        found = []
        for first, second in triangles:
            for path in ((home, first, second, home), (home, second, first, home)):
                opportunity = self._price(path, quote, now)
                if opportunity is not None:
                    found.append(opportunity)
        found.sort(key=lambda o: (-o.net_rate, o.cycle))
        return found

    def _price(
        self, path: tuple[str, str, str, str], updated: RateQuote, now: float
    ) -> Opportunity | None:
        legs = []
        for source, target in itertools.pairwise(path):
            leg = self._convert(source, target, now)
            if leg is None:
                return None
            legs.append(leg)
        if updated.pair not in {leg.pair for leg in legs}:
            return None  # priced through a better-rated twin pair: not this update's cycle
        p = self.params
        gross = math.prod(leg.rate for leg in legs)
        net = gross * (1 - p.fee_bps / 10_000) ** 3
        if not net > 1 + p.min_edge:
            return None
        return Opportunity(
            detector=self.name,
            cycle="->".join(path),
            updated_pair=updated.pair,
            legs=(legs[0], legs[1], legs[2]),
            gross_rate=gross,
            net_rate=net,
            est_profit=p.base_capital * (net - 1),
            allocated_capital=p.base_capital,
            at=updated.at,
        )

    def _convert(self, source: str, target: str, now: float) -> Leg | None:
        """The best fresh way to turn ``source`` into ``target``, or None."""
        best: Leg | None = None
        for pair in self._pairs.get(source, {}).get(target, []):
            quote = self._quotes[pair]
            if now - quote.at > self.params.max_age_s:
                continue
            if quote.base == source:
                leg = Leg(pair, "sell", quote.bid, source, target, quote.bid)
            else:
                leg = Leg(pair, "buy", quote.ask, source, target, 1 / quote.ask)
            if best is None or leg.rate > best.rate:
                best = leg
        return best
