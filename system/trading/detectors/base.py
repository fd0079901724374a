"""What a detector is and what it says: the ``Detector`` protocol and the ``Signal``.

A detector is pure logic: it is fed events (price updates, rate quotes) and answers with
what it sees in them. It reads no clock (an event's ``at`` is the loop time it happened; the
KST wall time, where a detector needs it, comes from a function the caller injects), does no
I/O and keeps its per-code state to itself, so the same events in the same order always give
the same signals, ids included. That is what lets a scenario replay a day and compare.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from system.broker.models import Side
from system.market import PriceUpdate

__all__ = ["Detector", "Side", "Signal", "signal_id"]


def signal_id(detector: str, subject: str, at: float) -> str:
    """A stable id for what ``detector`` said about ``subject`` at loop time ``at``.

    Derived, never random or counted, so a replay of the same events yields the same ids
    and a downstream consumer (the executor's client order ids, storage) can deduplicate on
    it. ``repr`` of a float is exact, so two different times never share a text.
    """
    digest = hashlib.sha256(f"{detector}\x1f{subject}\x1f{at!r}".encode()).hexdigest()
    return f"{detector}-{subject}-{digest[:16]}"


@dataclass(frozen=True)
class Signal:
    """A detector's suggestion to trade one instrument.

    ``limit_price`` is the suggested limit in won (on the KRX tick grid), or None for a
    market order; ``strength`` is the detector's own score (each detector documents its
    scale); ``at`` is the loop time of the event that triggered it. ``signal_id`` is derived
    from ``detector``, ``code`` and ``at`` (see ``signal_id``), so two instances of one
    detector class with different parameters need different names.
    """

    detector: str
    code: str
    side: Side
    limit_price: int | None
    reason: str
    strength: float
    at: float
    signal_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signal_id", signal_id(self.detector, self.code, self.at))


class Detector(Protocol):
    """A source of signals, fed every price update of the codes it watches.

    ``on_price`` must be cheap and must not block: it is called in the feed's task. It
    returns the signals the update triggered, usually none. Updates arrive per code in loop
    time order; a detector ignores one older than the last it saw for that code.
    """

    name: str

    def on_price(self, update: PriceUpdate) -> list[Signal]: ...
