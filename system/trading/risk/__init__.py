"""The trading core's risk guards, and the gate that consults them for every trade.

Each guard is a small unit of pure logic: no I/O, no clock. Times are the event loop's
(``at``, a float the caller passes), a calendar day is the KST trading day the caller
passes, money is whole won (``int``). A guard answers ``Allowed`` or ``Refused(guard,
reason, detail)`` with a stable kebab-case ``Reason``; a guard that stops trading records
a ``Halt``.

- ``KillSwitch``: one switch, engaged by hand or by a guard, that refuses every order.
- ``StopConditions``: halts on late market data or repeated execution failures.
- ``LossLimits``: daily (KST day) and cumulative loss limits, with reservations of each
  open trade's worst-case loss so a limit is never exceeded, not only reacted to.
- ``CapitalCap``: the most capital one trade may use.
- ``TradeLimits``: open trades at once, and won at risk in one asset.
- ``PreTradeValidator``: the broker's minimum order and the available cash.
- ``RiskGate``: all of the above, in one order, with the hooks that keep their books.

The gate consults them in this order (``CONSULTATION_ORDER``) and answers with the first
refusal: kill switch, stop conditions, loss limits, capital cap, trade limits
(concurrency, then the asset's exposure), pre-trade validation (minimum, then balance).
The most global refusals come first, and the cheapest: a halt refuses every trade and is
one flag to read, so nothing else is worth asking while it stands; the loss limits speak
for the whole account; the capital cap looks at this trade alone; the trade limits at the
book of open trades; the pre-trade checks last, because they are about this one order
against the broker's rules and against a balance fetched from outside, the most local and
the most perishable facts. The first refusal is also the one worth showing a person: "the
kill switch is engaged" explains a refusal better than "insufficient balance" would.
"""

from system.trading.risk.capital import CapitalCap
from system.trading.risk.errors import DuplicateTrade, RiskError, UnknownTrade
from system.trading.risk.gate import CONSULTATION_ORDER, RiskGate, TradeProposal
from system.trading.risk.kill_switch import KillSwitch, SwitchEvent
from system.trading.risk.loss import LossLimits
from system.trading.risk.pre_trade import PreTradeValidator
from system.trading.risk.stop_conditions import StopConditions
from system.trading.risk.trade_limits import OpenTrade, TradeLimits
from system.trading.risk.verdict import ALLOWED, Allowed, Guard, Halt, Reason, Refused, Verdict

__all__ = [
    "ALLOWED",
    "CONSULTATION_ORDER",
    "Allowed",
    "CapitalCap",
    "DuplicateTrade",
    "Guard",
    "Halt",
    "KillSwitch",
    "LossLimits",
    "OpenTrade",
    "PreTradeValidator",
    "Reason",
    "Refused",
    "RiskError",
    "RiskGate",
    "StopConditions",
    "SwitchEvent",
    "TradeLimits",
    "TradeProposal",
    "UnknownTrade",
    "Verdict",
]
