"""``LossLimits``: how much the account may lose in one KST trading day, and in all.

A loss is a *realised* one: the negative of the net realised P&L (won), so a profit earlier
in the day leaves room for a later loss, and the limit bounds the day's net result:
``daily P&L >= -daily_limit`` and ``cumulative P&L >= -cumulative_limit``. A limit is
*exceeded* when the loss goes past it; a loss of exactly the limit is within it.

Reacting only after a loss is realised would let one bad trade carry the day past the
limit. So the guard also holds *reservations*: a trade's worst-case loss, taken when the
trade is admitted and given back when it settles. A new trade is refused when the realised
loss, plus what the open trades may still lose, plus its own worst case would exceed a
limit; with honest worst cases, the realised loss never exceeds a limit, even for a moment.
The halt is the second line, for a worst case that was not honest (slippage, fees, a gap
through a stop). It looks at the loss *marked to market* too: the realised loss plus what
the open positions have lost at the latest prices (``mark``). Waiting for the loss to be
realised would let the sale that realises it go out first, past the limit; marking halts
on the price that shows the breach, before any order, and the halt then holds every order
(closing ones too) until a person releases. A release accepts the loss as it stands: the
guard halts again only when the loss grows past that (or a later day starts afresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from system.trading.risk._limits import non_negative, positive_or_none
from system.trading.risk.errors import DuplicateTrade, UnknownTrade
from system.trading.risk.verdict import (
    ALLOWED,
    Guard,
    Halt,
    Reason,
    Refused,
    Verdict,
    refused_while_halted,
)


@dataclass(frozen=True, slots=True)
class _Room:
    """One configured limit as it stands: what is lost, what is reserved, what is left."""

    reason: Reason
    scope: str  # "daily" / "cumulative", for messages
    limit: int
    loss: int  # realised, net; negative after a net profit
    reserved: int

    @property
    def left(self) -> int:
        return self.limit - self.loss - self.reserved


class LossLimits:
    """A daily and a cumulative loss limit in won (None: no such limit).

    The day is the KST trading day the caller passes (``system.broker.kst_today`` gives it;
    the guard reads no clock). The daily loss resets when a later day is first seen; the
    cumulative loss never resets. A P&L reported with a day before the current one (a late
    report) counts toward the current day: that day's limit is the one still enforceable,
    and dropping the loss would under-count it.

    A realised loss that exceeds a limit halts the guard (``record`` returns the ``Halt``);
    a halted guard refuses every trade until ``release()``, even on a new day: a breach is
    for a person to look at, not for the calendar to forget.
    """

    def __init__(self, daily_limit: int | None, cumulative_limit: int | None) -> None:
        self._daily_limit = positive_or_none("daily_limit", daily_limit)
        self._cumulative_limit = positive_or_none("cumulative_limit", cumulative_limit)
        self._day: date | None = None
        self._day_pnl = 0
        self._cumulative_pnl = 0
        self._reservations: dict[str, int] = {}
        self._halt: Halt | None = None
        self._unrealised = 0  # the open positions' P&L at the latest mark
        # The loss a person accepted when releasing a halt, per limit: a breach is a loss
        # past both the limit and this. The daily one is forgotten with its day.
        self._accepted: dict[Reason, int] = {}

    @property
    def daily_limit(self) -> int | None:
        return self._daily_limit

    @property
    def cumulative_limit(self) -> int | None:
        return self._cumulative_limit

    @property
    def halt(self) -> Halt | None:
        return self._halt

    @property
    def halted(self) -> bool:
        return self._halt is not None

    @property
    def trading_day(self) -> date | None:
        """The latest day a P&L was recorded on (None before the first)."""
        return self._day

    @property
    def cumulative_pnl(self) -> int:
        return self._cumulative_pnl

    @property
    def unrealised(self) -> int:
        """The open positions' P&L at the latest ``mark`` (won; negative: a loss)."""
        return self._unrealised

    @property
    def reserved(self) -> int:
        """The open trades' worst-case losses, together."""
        return sum(self._reservations.values())

    def daily_pnl(self, day: date) -> int:
        """The net realised P&L of trading day ``day`` (0 on a day not yet traded)."""
        if self._day is None or day > self._day:
            return 0
        return self._day_pnl  # a day before the current one: late reports count here

    def headroom(self, day: date) -> int | None:
        """The most a new trade on ``day`` may lose within every limit (None: no limit).

        Net of the open trades' reservations; negative once a limit has been exceeded.
        """
        rooms = self._rooms(day)
        return min(room.left for room in rooms) if rooms else None

    def would_breach(self, potential_loss: int, day: date) -> bool:
        """Whether a trade that may lose ``potential_loss`` won on ``day`` could exceed a limit."""
        return self._breach(potential_loss, day) is not None

    def check(self, potential_loss: int, day: date) -> Verdict:
        """Refuses every trade while halted, and a trade whose worst case does not fit."""
        if self._halt is not None:
            return refused_while_halted(Guard.LOSS_LIMITS, self._halt)
        room = self._breach(potential_loss, day)
        if room is None:
            return ALLOWED
        return Refused(
            guard=Guard.LOSS_LIMITS,
            reason=room.reason,
            detail=(
                f"the {room.scope} realised loss is {room.loss:,} KRW and open trades may "
                f"lose {room.reserved:,} KRW more; this trade's worst case of "
                f"{potential_loss:,} KRW would exceed the {room.scope} loss limit of "
                f"{room.limit:,} KRW (room left: {room.left:,} KRW)"
            ),
        )

    def record(self, pnl: int, day: date, at: float) -> Halt | None:
        """Adds a realised P&L (won, negative for a loss) on trading day ``day``.

        Returns the ``Halt`` when this loss takes the account past a limit, None otherwise
        (also while already halted: the first breach is the halt). A profit or a zero never
        halts, even while the account is still past a limit after a release: only a loss
        past what the release accepted is a new breach.
        """
        _whole_won("pnl", pnl)
        current = self._advance(day)
        self._day_pnl += pnl
        self._cumulative_pnl += pnl
        if pnl >= 0 or self._halt is not None:
            return None
        # Realised only: the last mark still counts the position this P&L just closed.
        for room in self._rooms(current):
            if self._breached(room, room.loss):
                return self._halt_on(
                    room,
                    f"the {room.scope} realised loss of {room.loss:,} KRW exceeds the "
                    f"{room.scope} loss limit of {room.limit:,} KRW",
                    at,
                )
        return None

    def mark(self, unrealised: int, day: date, at: float) -> Halt | None:
        """The open positions are worth ``unrealised`` won more (less, when negative) than
        they cost, at the latest prices on trading day ``day``.

        Returns the ``Halt`` when the realised loss plus the unrealised one exceeds a limit
        (and any loss accepted at a release), None otherwise. An unrealised loss counts
        toward the day it is marked on, whenever the position was opened.
        """
        _whole_won("unrealised", unrealised)
        current = self._advance(day)
        self._unrealised = unrealised
        if unrealised >= 0 or self._halt is not None:
            return None  # no worse than the realised loss, which ``record`` watches
        for room in self._rooms(current):
            marked = room.loss - unrealised
            if self._breached(room, marked):
                return self._halt_on(
                    room,
                    f"the {room.scope} loss marked to market is {marked:,} KRW "
                    f"({room.loss:,} realised, {-unrealised:,} unrealised on open positions), "
                    f"past the {room.scope} loss limit of {room.limit:,} KRW",
                    at,
                )
        return None

    def reserve(self, trade_id: str, worst_case_loss: int) -> None:
        """Holds ``worst_case_loss`` won of room for an admitted trade until it settles."""
        non_negative("worst_case_loss", worst_case_loss)
        if trade_id in self._reservations:
            raise DuplicateTrade(trade_id)
        self._reservations[trade_id] = worst_case_loss

    def settle(self, trade_id: str, pnl: int, day: date, at: float) -> Halt | None:
        """Gives back ``trade_id``'s reservation and records its realised ``pnl``."""
        _whole_won("pnl", pnl)  # before the reservation goes, so a bad call changes nothing
        self.unreserve(trade_id)
        return self.record(pnl, day, at)

    def unreserve(self, trade_id: str) -> int:
        """Gives back ``trade_id``'s reservation with no P&L (its order never filled)."""
        amount = self._reservations.pop(trade_id, None)
        if amount is None:
            raise UnknownTrade(trade_id)
        return amount

    def release(self) -> bool:
        """Ends the halt; False if there was none. The losses themselves stay counted."""
        if self._halt is None:
            return False
        self._halt = None
        if self._day is not None:
            for room in self._rooms(self._day):
                self._accepted[room.reason] = room.loss - min(self._unrealised, 0)
        return True

    def _advance(self, day: date) -> date:
        """The trading day a report on ``day`` counts toward; a later day starts afresh."""
        if self._day is None or day > self._day:
            self._day = day
            self._day_pnl = 0
            self._accepted.pop(Reason.DAILY_LOSS_LIMIT, None)
        return self._day

    def _breached(self, room: _Room, loss: int) -> bool:
        return loss > max(room.limit, self._accepted.get(room.reason, 0))

    def _halt_on(self, room: _Room, detail: str, at: float) -> Halt:
        self._halt = Halt(reason=room.reason, detail=detail, at=at, automatic=True)
        return self._halt

    def _rooms(self, day: date) -> list[_Room]:
        # Cumulative first: when both limits speak, the one that no new day clears is the
        # one to report.
        rooms = []
        reserved = self.reserved
        if self._cumulative_limit is not None:
            rooms.append(
                _Room(
                    reason=Reason.CUMULATIVE_LOSS_LIMIT,
                    scope="cumulative",
                    limit=self._cumulative_limit,
                    loss=-self._cumulative_pnl,
                    reserved=reserved,
                )
            )
        if self._daily_limit is not None:
            rooms.append(
                _Room(
                    reason=Reason.DAILY_LOSS_LIMIT,
                    scope="daily",
                    limit=self._daily_limit,
                    loss=-self.daily_pnl(day),
                    reserved=reserved,
                )
            )
        return rooms

    def _breach(self, potential_loss: int, day: date) -> _Room | None:
        non_negative("potential_loss", potential_loss)
        for room in self._rooms(day):
            if potential_loss > room.left:
                return room
        return None

    def __repr__(self) -> str:
        return (
            f"LossLimits(daily_limit={self._daily_limit}, "
            f"cumulative_limit={self._cumulative_limit}, halted={self.halted})"
        )


def _whole_won(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be whole won (an int); got {value!r}")
