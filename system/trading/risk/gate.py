"""``RiskGate``: every guard, consulted in one stated order, for every trade.

The order (``CONSULTATION_ORDER``) and why it is that order are in the package docstring
(``system.trading.risk``). The gate is synchronous and reads no clock: the caller passes
the loop time ``at``, the KST trading ``day`` and the broker's available cash, so the gate
runs unchanged on virtual time and in a unit test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from system.broker.models import Side, check_code
from system.trading.risk._limits import non_negative, positive
from system.trading.risk.capital import CapitalCap
from system.trading.risk.errors import DuplicateTrade, UnknownTrade
from system.trading.risk.kill_switch import KillSwitch
from system.trading.risk.loss import LossLimits
from system.trading.risk.pre_trade import PreTradeValidator
from system.trading.risk.stop_conditions import StopConditions
from system.trading.risk.trade_limits import OpenTrade, TradeLimits
from system.trading.risk.verdict import (
    ALLOWED,
    Guard,
    Halt,
    Reason,
    Refused,
    Verdict,
    refused_while_halted,
)

CONSULTATION_ORDER: tuple[Guard, ...] = (
    Guard.KILL_SWITCH,
    Guard.STOP_CONDITIONS,
    Guard.LOSS_LIMITS,
    Guard.CAPITAL_CAP,
    Guard.TRADE_LIMITS,
    Guard.PRE_TRADE,
)


@dataclass(frozen=True, slots=True)
class TradeProposal:
    """A trade to open: ``quantity`` shares of ``code`` at ``price`` won, on ``side``.

    ``price`` is the price the trade is valued at: the limit price, or for a market order
    the price the caller bounds it with (the best ask, or the day's upper price limit for
    a true worst case). ``worst_case_loss`` is the most the trade may lose, in won, held
    against the loss limits while it is open. For a buy it defaults to the whole value,
    the most a cash purchase can lose: safe, but it makes a trade need room for all of its
    value, so a caller with a stop-loss (or the KRX daily price limit) passes a tighter
    bound. A sell that opens a trade (a short) has no such natural bound: it must be given.
    """

    code: str
    side: Side
    quantity: int
    price: int
    worst_case_loss: int | None = None

    def __post_init__(self) -> None:
        check_code(self.code)
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell'; got {self.side!r}")
        positive("quantity", self.quantity)
        positive("price", self.price)
        if self.worst_case_loss is not None:
            non_negative("worst_case_loss", self.worst_case_loss)
        elif self.side == "sell":
            raise ValueError(
                f"a sell that opens a trade in {self.code} has no loss bounded by its value; "
                "pass worst_case_loss (e.g. from its stop-loss)"
            )

    @property
    def value(self) -> int:
        """What the trade puts to work, in won."""
        return self.quantity * self.price

    @property
    def worst_case(self) -> int:
        """The loss held against the loss limits while the trade is open."""
        return self.value if self.worst_case_loss is None else self.worst_case_loss


class RiskGate:
    """Admits or refuses trades, and keeps the guards' books as trades open and close.

    ``admit`` checks and, when the trade is allowed, opens it (a concurrency slot, its
    exposure, its worst-case loss reserved) in one synchronous step, so two coroutines
    cannot both take the last slot or the last room between a check and an open.
    ``on_trade_closed`` gives all of that back and records the realised P&L.

    An automatic halt (a loss limit exceeded, a stop condition) engages the kill switch,
    so "no order after a halt until a release" has one source of truth; ``release``
    releases the switch and the halted guards together. A switch released directly, not
    through the gate, leaves the guards halted: the gate then still refuses (fail closed).
    """

    def __init__(
        self,
        *,
        capital_cap: CapitalCap,
        loss_limits: LossLimits,
        trade_limits: TradeLimits,
        pre_trade: PreTradeValidator,
        stop_conditions: StopConditions,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self._capital_cap = capital_cap
        self._loss_limits = loss_limits
        self._trade_limits = trade_limits
        self._pre_trade = pre_trade
        self._stop_conditions = stop_conditions
        self._kill_switch = KillSwitch() if kill_switch is None else kill_switch

    @property
    def capital_cap(self) -> CapitalCap:
        """Size trades with ``capital_cap.allot()`` before proposing them."""
        return self._capital_cap

    @property
    def loss_limits(self) -> LossLimits:
        return self._loss_limits

    @property
    def trade_limits(self) -> TradeLimits:
        return self._trade_limits

    @property
    def pre_trade(self) -> PreTradeValidator:
        return self._pre_trade

    @property
    def stop_conditions(self) -> StopConditions:
        return self._stop_conditions

    @property
    def kill_switch(self) -> KillSwitch:
        return self._kill_switch

    @property
    def open_trades(self) -> Mapping[str, OpenTrade]:
        return self._trade_limits.open_trades

    @property
    def halt(self) -> Halt | None:
        """The halt in force: the kill switch's, else a halted guard's; None when trading."""
        return self._kill_switch.halt or self._stop_conditions.halt or self._loss_limits.halt

    @property
    def halted(self) -> bool:
        return self.halt is not None

    def check(self, proposal: TradeProposal, *, day: date, available_cash: int) -> Verdict:
        """The first refusal in ``CONSULTATION_ORDER``, or ``ALLOWED``; changes nothing.

        ``available_cash`` is the broker's orderable cash; a sell does not spend it.
        """
        value = proposal.value
        cash = available_cash if proposal.side == "buy" else None
        consult: dict[Guard, Callable[[], Verdict]] = {
            Guard.KILL_SWITCH: self._kill_switch.check,
            Guard.STOP_CONDITIONS: self._stop_conditions.check,
            Guard.LOSS_LIMITS: lambda: self._loss_limits.check(proposal.worst_case, day),
            Guard.CAPITAL_CAP: lambda: self._capital_cap.check(value),
            Guard.TRADE_LIMITS: lambda: self._trade_limits.check(proposal.code, value),
            Guard.PRE_TRADE: lambda: self._pre_trade.check(value, cash),
        }
        for guard in CONSULTATION_ORDER:
            verdict = consult[guard]()
            if isinstance(verdict, Refused):
                return verdict
        return ALLOWED

    def admit(
        self, trade_id: str, proposal: TradeProposal, *, day: date, available_cash: int
    ) -> Verdict:
        """``check``, and when allowed, open ``trade_id`` in the guards' books.

        ``trade_id`` is the executor's id for the trade (its client order id); a trade
        id already open raises ``DuplicateTrade`` before anything is checked or changed.
        """
        if trade_id in self._trade_limits.open_trades:
            raise DuplicateTrade(trade_id)
        verdict = self.check(proposal, day=day, available_cash=available_cash)
        if isinstance(verdict, Refused):
            return verdict
        self._trade_limits.open(trade_id, proposal.code, proposal.value)
        self._loss_limits.reserve(trade_id, proposal.worst_case)
        return verdict

    def check_exit(self) -> Verdict:
        """Whether an order that closes an open trade may be sent: only a halt refuses it.

        Closing lowers exposure, so the limits on opening do not apply; but "no order
        after a halt" means no order, closing ones included, until a person releases.
        """
        loss_halt = self._loss_limits.halt
        for verdict in (
            self._kill_switch.check(),
            self._stop_conditions.check(),
            ALLOWED if loss_halt is None else refused_while_halted(Guard.LOSS_LIMITS, loss_halt),
        ):
            if isinstance(verdict, Refused):
                return verdict
        return ALLOWED

    def on_trade_closed(self, trade_id: str, pnl: int, *, day: date, at: float) -> Halt | None:
        """``trade_id`` is closed with realised ``pnl`` won (negative: a loss) on ``day``.

        Frees its slot, exposure and reservation; returns the ``Halt`` if the loss took the
        account past a loss limit (the kill switch is then engaged). ``UnknownTrade`` for a
        trade that is not open, before anything changes.
        """
        if trade_id not in self._trade_limits.open_trades:
            raise UnknownTrade(trade_id)
        # Settle first: it validates the P&L before changing anything, and then cannot fail.
        halt = self._loss_limits.settle(trade_id, pnl, day, at)
        self._trade_limits.close(trade_id)
        return self._engage_on(halt, Guard.LOSS_LIMITS)

    def on_trade_cancelled(self, trade_id: str) -> None:
        """``trade_id`` never opened (its order was refused or cancelled unfilled)."""
        if trade_id not in self._trade_limits.open_trades:
            raise UnknownTrade(trade_id)
        self._loss_limits.unreserve(trade_id)
        self._trade_limits.close(trade_id)

    def record_pnl(self, pnl: int, *, day: date, at: float) -> Halt | None:
        """Realised P&L of no trade the gate admitted (a partial close, a position carried
        over a restart); counted against the loss limits like any other."""
        return self._engage_on(self._loss_limits.record(pnl, day, at), Guard.LOSS_LIMITS)

    def mark_to_market(self, unrealised: int, *, day: date, at: float) -> Halt | None:
        """The open positions' P&L at the latest prices (won, negative: a loss); returns
        the ``Halt`` (the kill switch then engaged) if, with the realised loss, it takes
        the account past a loss limit. See ``LossLimits.mark``."""
        return self._engage_on(self._loss_limits.mark(unrealised, day, at), Guard.LOSS_LIMITS)

    def on_execution(self, ok: bool, *, at: float) -> Halt | None:
        """An execution went through (``ok``) or failed; see ``StopConditions``."""
        halt = self._stop_conditions.record_execution(ok, at)
        return self._engage_on(halt, Guard.STOP_CONDITIONS)

    def on_source_latency(self, seconds: float, *, at: float) -> Halt | None:
        """A market data event arrived ``seconds`` after its source time."""
        halt = self._stop_conditions.observe_latency(seconds, at)
        return self._engage_on(halt, Guard.STOP_CONDITIONS)

    def engage(self, detail: str, *, at: float, by: str, reason: str = Reason.MANUAL) -> bool:
        """A person (``by``) halts trading; False if it was halted already."""
        return self._kill_switch.engage(reason, detail, at=at, automatic=False, by=by)

    def release(self, *, at: float, by: str) -> bool:
        """Ends every halt: the kill switch's and the guards'; False if none was in force.

        Losses stay counted: after a daily loss halt is released the same day, the loss
        limits still refuse trades that do not fit in what is left of the day's limit.
        """
        released = self._kill_switch.release(at=at, by=by)
        released = self._stop_conditions.release() or released
        released = self._loss_limits.release() or released
        return released

    def _engage_on(self, halt: Halt | None, guard: Guard) -> Halt | None:
        if halt is not None:
            self._kill_switch.engage(
                halt.reason, halt.detail, at=halt.at, automatic=True, by=str(guard)
            )
        return halt

    def __repr__(self) -> str:
        return (
            f"RiskGate({self._kill_switch!r}, {self._stop_conditions!r}, "
            f"{self._loss_limits!r}, {self._capital_cap!r}, {self._trade_limits!r}, "
            f"{self._pre_trade!r})"
        )
