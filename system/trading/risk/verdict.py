"""What consulting a guard answers: ``Allowed`` or ``Refused``, and the ``Halt`` record.

A ``Refused`` names the guard that refused (``Guard``), a stable kebab-case ``Reason`` code
that dashboards, metrics and the harness's expectations can match on, and a ``detail`` for
people: what was over which limit, and what to do next. A ``Halt`` is what a guard that
stops trading (kill switch, loss limits, stop conditions) records when it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Guard(StrEnum):
    """The guards, by the name a ``Refused`` and the kill switch's history carry."""

    KILL_SWITCH = "kill-switch"
    STOP_CONDITIONS = "stop-conditions"
    LOSS_LIMITS = "loss-limits"
    CAPITAL_CAP = "capital-cap"
    TRADE_LIMITS = "trade-limits"
    PRE_TRADE = "pre-trade"


class Reason(StrEnum):
    """Why a trade was refused or trading halted; stable codes, never reworded."""

    KILL_SWITCH = "kill-switch"
    MANUAL = "manual"  # an operator's halt (the kill switch engaged by hand)
    SOURCE_LATENCY = "source-latency"
    CONSECUTIVE_FAILURES = "consecutive-failures"
    DAILY_LOSS_LIMIT = "daily-loss-limit"
    CUMULATIVE_LOSS_LIMIT = "cumulative-loss-limit"
    CAPITAL_CAP = "capital-cap"
    MAX_CONCURRENT_TRADES = "max-concurrent-trades"
    ASSET_EXPOSURE = "asset-exposure"
    BELOW_MINIMUM_ORDER = "below-minimum-order"
    INSUFFICIENT_BALANCE = "insufficient-balance"


@dataclass(frozen=True, slots=True)
class Allowed:
    """The guard (or the whole gate) lets the trade through."""

    @property
    def allowed(self) -> Literal[True]:
        return True


ALLOWED = Allowed()


@dataclass(frozen=True, slots=True)
class Refused:
    """The trade must not be sent: ``guard`` refused it for ``reason`` (see ``detail``)."""

    guard: str
    reason: str
    detail: str

    @property
    def allowed(self) -> Literal[False]:
        return False


Verdict = Allowed | Refused


@dataclass(frozen=True, slots=True)
class Halt:
    """Trading stopped at loop time ``at`` for ``reason``.

    ``automatic`` tells a guard's own halt (a limit breached, the source too slow) from an
    operator's; an automatic halt is released by a person all the same, never by time.
    """

    reason: str
    detail: str
    at: float
    automatic: bool


def refused_while_halted(guard: str, halt: Halt, reason: str | None = None) -> Refused:
    """The refusal of a guard that is halted: every order, until a release.

    ``reason`` defaults to the halt's own; the detail always names the halt's.
    """
    how = "automatically" if halt.automatic else "by hand"
    return Refused(
        guard=guard,
        reason=halt.reason if reason is None else reason,
        detail=(
            f"trading halted {how} at t={halt.at:.3f} ({halt.reason}): {halt.detail}; "
            "no order is sent until the halt is released"
        ),
    )
