"""Market events a scenario injects: a price gap, limit-up/limit-down, a VI halt.

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

Where events overlap, a halt beats a limit, and a limit beats a gap (the gap still shifts
the path the price returns to); of two limits in force the later-starting one holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

KRX_VI_SECONDS = 120  # a static or dynamic VI's single-price auction lasts two minutes


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    code: str = Field(pattern=r"^\d{6}$")
    # None: from the next step (pinned when the event is added, as a fault's ``for`` is).
    at: int | None = Field(default=None, ge=0)

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


MarketEvent = Annotated[
    Gap | LimitUp | LimitDown | VolatilityInterruption, Field(discriminator="kind")
]
MARKET_EVENT = TypeAdapter[MarketEvent](MarketEvent)
KINDS = ("gap", "limit-up", "limit-down", "vi")

Pin = Literal["upper", "lower"]


@dataclass(frozen=True)
class Effect:
    """What the events of one code do at one step."""

    factor: float = 1.0  # the gaps in force, compounded
    pin: Pin | None = None  # pinned at the day's upper or lower limit
    halt: VolatilityInterruption | None = None  # no trading: a VI's auction

    @property
    def trading(self) -> bool:
        """Whether anything trades at this step."""
        return self.halt is None


UNDISTURBED = Effect()


def effect_at(events: Sequence[MarketEvent], step: int) -> Effect:
    """The combined effect of one code's ``events`` (in the order added) at ``step``."""
    factor = 1.0
    pinned: LimitUp | LimitDown | None = None
    halt: VolatilityInterruption | None = None
    for event in events:
        if not event.covers(step):
            continue
        if isinstance(event, Gap):
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
    """The events injected into one market, per code, in the order they were added.

    One collection can serve several ``Market`` objects: the mock broker's and the feed's
    markets of one world share it, so both see what the broker's control plane injects.
    ``revision`` changes whenever the events do, for caches of what the market computed.
    """

    def __init__(self) -> None:
        # Tuples, replaced on change: a market's cache of a code's path holds the tuple it
        # was computed from and compares it by identity.
        self._by_code: dict[str, tuple[MarketEvent, ...]] = {}
        self._added: list[MarketEvent] = []
        self.revision = 0

    def add(self, event: MarketEvent) -> None:
        if event.at is None:
            raise ValueError("pin the event's start (at) before adding it")
        self._by_code[event.code] = (*self._by_code.get(event.code, ()), event)
        self._added.append(event)
        self.revision += 1

    def clear(self) -> int:
        """Forget every event; returns how many there were."""
        count = len(self._added)
        self._by_code.clear()
        self._added.clear()
        self.revision += 1
        return count

    def of(self, code: str) -> tuple[MarketEvent, ...]:
        return self._by_code.get(code, ())

    def __iter__(self) -> Iterator[MarketEvent]:
        """Every event, in the order added."""
        return iter(list(self._added))

    def __len__(self) -> int:
        return len(self._added)
