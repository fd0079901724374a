"""Is this trade the next one? Gaps and duplicates in the realtime trade stream, per code.

Each H0STCNT0 record carries its own quantity (CNTG_VOL) and the day's accumulated volume
including it (ACML_VOL), so consecutive trades of one code satisfy
``accumulated == previous accumulated + volume``. Against the last accepted trade:

- ``accumulated <= last``: the trade was seen already, or arrives out of order — a
  **duplicate**, to drop.
- ``accumulated == last + volume``: **next**, in sequence.
- anything else: trades were missed (or the numbers don't add up) — a **gap**. The trade is
  still the newest known, so it is kept, and the code is resynchronised from REST.

A code seen for the first time, or first after a reconnect (``resume``), has no sequence to
continue: its first trade is accepted as **first** unless it is not newer than the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["first", "next", "duplicate", "gap"]


@dataclass
class _Position:
    accumulated: int
    # After a reconnect the hole is the reconnect's to repair (a REST resync of every code),
    # so the next trade re-anchors the sequence instead of counting as a gap.
    resuming: bool = False


class Tape:
    """The last accepted accumulated volume of each code, and the verdict on the next trade."""

    def __init__(self) -> None:
        self._positions: dict[str, _Position] = {}

    def check(self, code: str, *, volume: int, accumulated: int) -> Verdict:
        """The verdict on a trade of ``code``; accepted trades (all but duplicates) move the
        tape to ``accumulated``."""
        position = self._positions.get(code)
        if position is None:
            self._positions[code] = _Position(accumulated)
            return "first"
        if accumulated <= position.accumulated:
            return "duplicate"
        verdict: Verdict
        if position.resuming:
            verdict = "first"
        elif accumulated == position.accumulated + volume:
            verdict = "next"
        else:
            verdict = "gap"
        position.accumulated, position.resuming = accumulated, False
        return verdict

    def last(self, code: str) -> int | None:
        """The accumulated volume of the last accepted trade of ``code``, if any."""
        position = self._positions.get(code)
        return None if position is None else position.accumulated

    def resume(self) -> None:
        """A new connection: every code's next trade starts its sequence afresh."""
        for position in self._positions.values():
            position.resuming = True

    def forget(self, code: str) -> None:
        self._positions.pop(code, None)
