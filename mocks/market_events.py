"""Market events a scenario injects: a price gap, limit-up/limit-down, a VI halt, and a
mispriced cross rate on the FX venue.

They are the market's behaviour, not faults of a wire: the simulator (``mocks.market``)
applies them when it computes a step, so the REST quote, the order book, the fills and the
feed's frames all show the same event. What the events do is a pure function of (seed,
code, step, events): the same seed and the same events give the same world, and an event
for one code never touches another code's path. The broker's control plane injects them
(``POST /_squall/market/events``, ``BrokerControl.add_market_event``); an event may not
start before the step in progress, and clearing them returns every step, past ones too, to
the undisturbed path.

Times are seconds on the mock's clock, which is also the market's step (one step a second,
``STEP_SECONDS``); they are whole seconds because the market moves in whole steps.

- ``gap``: from step ``at`` on, the path is the undisturbed one times ``1 + pct/100``, on
  the tick grid and inside the day's limits. Gaps of one code compound.
- ``limit-up`` / ``limit-down``: steps ``[at, at + for)`` (no ``for``: until cleared) trade
  at the day's upper / lower limit; the book is one-sided (no asks at limit-up, no bids at
  limit-down) with the queue at the limit price. Then the path resumes where it would be.
- ``vi`` (변동성완화장치): steps ``[at, at + for)`` (KRX: 120 s) are a single-price auction:
  no trades, so the price stays at the last trade before ``at`` and the volume stands
  still. When the halt ends the price is where the path would be without it: the auction
  that ends a VI re-prices the stock at once, it does not drift back from the frozen price.

- ``mispricing``: steps ``[at, at + for)`` (no ``for``: until cleared) quote one currency
  pair of the FX venue (``mocks.fx``) ``pct`` percent off the rate its two currencies
  imply: bid and ask both move, so the pair disagrees with the other pairs' cross rate and
  a triangle through it returns more than it costs. It names a ``pair`` ("EUR/JPY"), not
  a stock ``code``; a stock's path never sees it. When it ends the pair is consistent again.

Where events overlap, a halt beats a limit, and a limit beats a gap (the gap still shifts
the path the price returns to); of two limits in force the later-starting one holds.
Mispricings of one pair compound, as gaps do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

KRX_VI_SECONDS = 120  # a static or dynamic VI's single-price auction lasts two minutes


class _Timed(BaseModel):
    """What every event has: when it starts, and so which steps it covers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # None: from the next step (pinned when the event is added, as a fault's ``for`` is).
    at: int | None = Field(default=None, ge=0)

    @property
    def subject(self) -> str:
        """What the event moves: a stock's code, or a currency pair."""
        raise NotImplementedError

    @property
    def start(self) -> int:
        """The first step the event acts on (only meaningful once ``at`` is pinned)."""
        return self.at or 0

    @property
    def end(self) -> int | None:
        """The first step after the event; None: it never ends (until cleared)."""
        return None

    def covers(self, step: int) -> bool:
        return self.start <= step and (self.end is None or step < self.end)


class _Event(_Timed):
    """An event of one stock."""

    code: str = Field(pattern=r"^\d{6}$")

    @property
    def subject(self) -> str:
        return self.code


class Gap(_Event):
    """The price path shifts by ``pct`` percent from ``at`` on (-8: an 8 % gap down)."""

    kind: Literal["gap"]
    pct: float = Field(gt=-100, le=100)

    @model_validator(mode="after")
    def _moves(self) -> Gap:
        if self.pct == 0:
            raise ValueError("a gap of 0 % moves nothing; give pct, e.g. -8 for 8 % down")
        return self


class _Window(_Event):
    for_: int | None = Field(default=None, alias="for", ge=1)

    @property
    def end(self) -> int | None:
        return None if self.for_ is None else self.start + self.for_


class LimitUp(_Window):
    """Pinned at the day's upper limit (상한가) for ``for`` seconds; none: until cleared."""

    kind: Literal["limit-up"]


class LimitDown(_Window):
    """Pinned at the day's lower limit (하한가) for ``for`` seconds; none: until cleared."""

    kind: Literal["limit-down"]


class VolatilityInterruption(_Window):
    """A VI halt: a single-price auction of ``for`` seconds (KRX: 120) with no trades."""

    kind: Literal["vi"]
    for_: int = Field(default=KRX_VI_SECONDS, alias="for", ge=1)

    @property
    def end(self) -> int:
        return self.start + self.for_

    @model_validator(mode="after")
    def _after_the_open(self) -> VolatilityInterruption:
        if self.at == 0:
            raise ValueError(
                "a VI interrupts continuous trading, which starts after the opening auction "
                "at 0 s; give at >= 1 (or leave it out for the next second)"
            )
        return self


class Mispricing(_Timed):
    """One FX pair quoted ``pct`` percent off its cross rate for ``for`` seconds; none:
    until cleared (1.5: EUR/JPY 1.5 % dearer than EUR/KRW over JPY/KRW)."""

    kind: Literal["mispricing"]
    pair: str = Field(pattern=r"^[A-Z]{3}/[A-Z]{3}$")
    pct: float = Field(gt=-100, le=100)
    for_: int | None = Field(default=None, alias="for", ge=1)

    @property
    def subject(self) -> str:
        return self.pair

    @property
    def end(self) -> int | None:
        return None if self.for_ is None else self.start + self.for_

    @model_validator(mode="after")
    def _moves(self) -> Mispricing:
        if self.pct == 0:
            raise ValueError("a mispricing of 0 % moves nothing; give pct, e.g. 1.5")
        return self


MarketEvent = Annotated[
    Gap | LimitUp | LimitDown | VolatilityInterruption | Mispricing, Field(discriminator="kind")
]
MARKET_EVENT = TypeAdapter[MarketEvent](MarketEvent)
KINDS = ("gap", "limit-up", "limit-down", "vi", "mispricing")

Pin = Literal["upper", "lower"]


@dataclass(frozen=True)
class Effect:
    """What the events of one code (or one FX pair) do at one step."""

    factor: float = 1.0  # the gaps (a pair's mispricings) in force, compounded
    pin: Pin | None = None  # pinned at the day's upper or lower limit
    halt: VolatilityInterruption | None = None  # no trading: a VI's auction

    @property
    def trading(self) -> bool:
        """Whether anything trades at this step."""
        return self.halt is None


UNDISTURBED = Effect()


def steps_kept(
    seen: tuple[MarketEvent, ...], events: tuple[MarketEvent, ...], computed: int
) -> int:
    """How many of the ``computed`` steps worked out under ``seen`` still hold under
    ``events``, one subject's events now.

    Events are added, in order, or all cleared. An event moves no step before its start, so
    when ``events`` are ``seen`` plus new ones, the steps before the earliest new start
    stand: a day's events then cost the steps after them, not the whole day again. Any
    other change (cleared, replaced) keeps none."""
    if events[: len(seen)] != seen:
        return 0
    return min((event.start for event in events[len(seen) :]), default=computed)


def effect_at(events: Sequence[MarketEvent], step: int) -> Effect:
    """The combined effect of one code's (or pair's) ``events``, in the order added, at
    ``step``."""
    factor = 1.0
    pinned: LimitUp | LimitDown | None = None
    halt: VolatilityInterruption | None = None
    for event in events:
        if not event.covers(step):
            continue
        if isinstance(event, Gap | Mispricing):
            factor *= 1 + event.pct / 100
        elif isinstance(event, VolatilityInterruption):
            halt = halt or event
        elif pinned is None or event.start >= pinned.start:
            pinned = event
    pin: Pin | None = None
    if pinned is not None:
        pin = "upper" if isinstance(pinned, LimitUp) else "lower"
    return Effect(factor, pin, halt)


class MarketEvents:
    """The events injected into one market, per subject (a stock's code, an FX pair), in
    the order they were added.

    One collection can serve several ``Market`` objects: the mock broker's and the feed's
    markets of one world share it, so both see what the broker's control plane injects.
    ``revision`` changes whenever the events do, for caches of what the market computed.
    """

    def __init__(self) -> None:
        # Tuples, replaced on change: a market's cache of a code's path holds the tuple it
        # was computed from and compares it by identity.
        self._by_subject: dict[str, tuple[MarketEvent, ...]] = {}
        self._added: list[MarketEvent] = []
        self.revision = 0

    def add(self, event: MarketEvent) -> None:
        if event.at is None:
            raise ValueError("pin the event's start (at) before adding it")
        subject = event.subject
        self._by_subject[subject] = (*self._by_subject.get(subject, ()), event)
        self._added.append(event)
        self.revision += 1

    def clear(self) -> int:
        """Forget every event; returns how many there were."""
        count = len(self._added)
        self._by_subject.clear()
        self._added.clear()
        self.revision += 1
        return count

    def of(self, subject: str) -> tuple[MarketEvent, ...]:
        """The events of one stock's code, or of one FX pair ("EUR/JPY")."""
        return self._by_subject.get(subject, ())

    def __iter__(self) -> Iterator[MarketEvent]:
        """Every event, in the order added."""
        return iter(list(self._added))

    def __len__(self) -> int:
        return len(self._added)
