"""RiskGate: the order of consultation, admission as one step, and the hooks that feed the
guards (closed trades, executions, latency) and turn their halts into the kill switch."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pytest

from system.trading.risk import (
    ALLOWED,
    CONSULTATION_ORDER,
    CapitalCap,
    DuplicateTrade,
    Guard,
    Halt,
    KillSwitch,
    LossLimits,
    PreTradeValidator,
    Reason,
    Refused,
    RiskGate,
    StopConditions,
    TradeLimits,
    TradeProposal,
    UnknownTrade,
)

DAY = date(2025, 3, 14)
NEXT_DAY = date(2025, 3, 17)
SAMSUNG = "005930"
HYNIX = "000660"
CASH = 10_000_000

# 10 shares at 70,000 won: 700,000 won, with a stop-loss that bounds its loss at 100,000.
PROPOSAL = TradeProposal(
    code=SAMSUNG, side="buy", quantity=10, price=70_000, worst_case_loss=100_000
)


@dataclass
class Setup:
    """A gate's configuration and the cash to check against; a refusal-maker edits it."""

    max_per_trade: int = 1_000_000
    daily_limit: int = 500_000
    cumulative_limit: int = 2_000_000
    max_concurrent_trades: int = 2
    max_exposure_per_asset: int = 1_500_000
    min_order_value: int = 10_000
    cash: int = CASH
    then: list[Callable[[RiskGate], object]] = field(default_factory=list)

    def gate(self) -> RiskGate:
        gate = RiskGate(
            capital_cap=CapitalCap(self.max_per_trade),
            loss_limits=LossLimits(self.daily_limit, self.cumulative_limit),
            trade_limits=TradeLimits(self.max_concurrent_trades, self.max_exposure_per_asset),
            pre_trade=PreTradeValidator(self.min_order_value),
            stop_conditions=StopConditions(max_source_latency_s=1.0, max_consecutive_failures=3),
        )
        for step in self.then:
            step(gate)
        return gate


def make_gate(**config: int) -> RiskGate:
    return Setup(**config).gate()  # type: ignore[arg-type]


# Each of these makes exactly one guard refuse PROPOSAL, whatever the others do; the guards
# are driven directly (not through the gate's hooks) so no halt spills into the kill switch.
def engage_kill_switch(s: Setup) -> None:
    s.then.append(lambda g: g.kill_switch.engage("manual", "x", at=0, automatic=False, by="t"))


def halt_stop_conditions(s: Setup) -> None:
    s.then.append(lambda g: g.stop_conditions.observe_latency(5.0, at=0.0))


def spend_the_days_loss_room(s: Setup) -> None:
    # 450,000 lost: 50,000 left, less than the trade's worst case of 100,000. Not a halt.
    s.then.append(lambda g: g.loss_limits.record(-450_000, DAY, at=0.0))


def lower_the_capital_cap(s: Setup) -> None:
    s.max_per_trade = 500_000


def fill_every_slot(s: Setup) -> None:
    s.then.append(lambda g: g.trade_limits.open("other-1", HYNIX, 10_000))
    s.then.append(lambda g: g.trade_limits.open("other-2", HYNIX, 10_000))


def load_the_asset(s: Setup) -> None:
    s.then.append(lambda g: g.trade_limits.open("same-code", SAMSUNG, 900_000))


def raise_the_minimum(s: Setup) -> None:
    s.min_order_value = 2_000_000


def drain_the_cash(s: Setup) -> None:
    s.cash = 100_000


REFUSALS: list[tuple[Reason, Callable[[Setup], None]]] = [
    (Reason.KILL_SWITCH, engage_kill_switch),
    (Reason.SOURCE_LATENCY, halt_stop_conditions),
    (Reason.DAILY_LOSS_LIMIT, spend_the_days_loss_room),
    (Reason.CAPITAL_CAP, lower_the_capital_cap),
    (Reason.MAX_CONCURRENT_TRADES, fill_every_slot),
    (Reason.ASSET_EXPOSURE, load_the_asset),
    (Reason.BELOW_MINIMUM_ORDER, raise_the_minimum),
    (Reason.INSUFFICIENT_BALANCE, drain_the_cash),
]


def check(setup: Setup, proposal: TradeProposal = PROPOSAL) -> object:
    return setup.gate().check(proposal, day=DAY, available_cash=setup.cash)


def test_the_proposal_passes_an_unbroken_gate() -> None:
    assert check(Setup()) is ALLOWED


@pytest.mark.parametrize(("reason", "refuse"), REFUSALS, ids=[r for r, _ in REFUSALS])
def test_each_refusal_maker_alone_gives_its_refusal(
    reason: Reason, refuse: Callable[[Setup], None]
) -> None:
    setup = Setup()
    refuse(setup)
    verdict = check(setup)
    assert isinstance(verdict, Refused)
    assert verdict.reason == reason


@pytest.mark.parametrize(
    ("earlier", "later"),
    list(itertools.pairwise(REFUSALS)),
    ids=[f"{a}-before-{b}" for (a, _), (b, _) in itertools.pairwise(REFUSALS)],
)
def test_a_trade_failing_two_guards_is_refused_by_the_earlier_one(
    earlier: tuple[Reason, Callable[[Setup], None]],
    later: tuple[Reason, Callable[[Setup], None]],
) -> None:
    setup = Setup()
    earlier[1](setup)
    later[1](setup)
    verdict = check(setup)
    assert isinstance(verdict, Refused)
    assert verdict.reason == earlier[0]


def test_with_every_guard_refusing_the_kill_switch_speaks() -> None:
    setup = Setup()
    for _, refuse in reversed(REFUSALS):
        refuse(setup)
    verdict = check(setup)
    assert isinstance(verdict, Refused)
    assert verdict.guard == Guard.KILL_SWITCH


def test_the_stated_order_names_every_guard_once() -> None:
    assert list(CONSULTATION_ORDER) == [
        "kill-switch",
        "stop-conditions",
        "loss-limits",
        "capital-cap",
        "trade-limits",
        "pre-trade",
    ]


def test_admit_opens_the_trade_in_every_book() -> None:
    gate = make_gate()
    assert gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH) is ALLOWED
    assert set(gate.open_trades) == {"t1"}
    assert gate.trade_limits.exposure(SAMSUNG) == 700_000
    assert gate.loss_limits.reserved == 100_000


def test_a_refused_admission_opens_nothing() -> None:
    gate = make_gate(min_order_value=2_000_000)
    assert isinstance(gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH), Refused)
    assert dict(gate.open_trades) == {}
    assert gate.loss_limits.reserved == 0


def test_admitted_trades_hold_the_slots_until_they_close() -> None:
    gate = make_gate(max_concurrent_trades=2)
    gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH)
    gate.admit("t2", PROPOSAL, day=DAY, available_cash=CASH)
    refused = gate.admit("t3", PROPOSAL, day=DAY, available_cash=CASH)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.MAX_CONCURRENT_TRADES
    gate.on_trade_closed("t1", 5_000, day=DAY, at=1.0)
    assert gate.admit("t3", PROPOSAL, day=DAY, available_cash=CASH) is ALLOWED


def test_open_trades_worst_cases_keep_the_day_from_ever_passing_its_limit() -> None:
    # Nothing is lost yet, but five open trades may lose 100,000 each: the daily limit of
    # 500,000 is spoken for, and a sixth trade could take the day past it.
    gate = make_gate(daily_limit=500_000, max_concurrent_trades=10, max_exposure_per_asset=10**9)
    for n in range(5):
        assert gate.admit(f"t{n}", PROPOSAL, day=DAY, available_cash=CASH) is ALLOWED
    refused = gate.admit("t5", PROPOSAL, day=DAY, available_cash=CASH)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.DAILY_LOSS_LIMIT
    # Every one of them losing its worst case lands exactly on the limit, not past it.
    for n in range(5):
        assert gate.on_trade_closed(f"t{n}", -100_000, day=DAY, at=float(n)) is None
    assert gate.loss_limits.daily_pnl(DAY) == -500_000
    assert not gate.halted


def test_a_buy_without_a_stated_worst_case_reserves_its_whole_value() -> None:
    gate = make_gate(daily_limit=700_000)
    whole = TradeProposal(code=SAMSUNG, side="buy", quantity=10, price=70_000)
    assert gate.admit("t1", whole, day=DAY, available_cash=CASH) is ALLOWED
    assert gate.loss_limits.reserved == 700_000
    refused = gate.check(whole, day=DAY, available_cash=CASH)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.DAILY_LOSS_LIMIT


def test_a_sell_that_opens_a_trade_must_state_its_worst_case() -> None:
    with pytest.raises(ValueError, match="worst_case_loss"):
        TradeProposal(code=SAMSUNG, side="sell", quantity=10, price=70_000)


def test_a_sell_is_not_checked_against_the_cash() -> None:
    gate = make_gate()
    sell = TradeProposal(
        code=SAMSUNG, side="sell", quantity=10, price=70_000, worst_case_loss=100_000
    )
    assert gate.check(sell, day=DAY, available_cash=0) is ALLOWED
    assert isinstance(gate.check(PROPOSAL, day=DAY, available_cash=0), Refused)


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [("code", "5930", "6 digits"), ("side", "short", "side"), ("quantity", 0, "quantity")],
)
def test_a_malformed_proposal_is_an_error(field_name: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"code": SAMSUNG, "side": "buy", "quantity": 1, "price": 1}
    fields[field_name] = value
    with pytest.raises(ValueError, match=message):
        TradeProposal(**fields)  # type: ignore[arg-type]


def test_a_loss_past_the_limit_halts_through_the_kill_switch_until_a_release() -> None:
    gate = make_gate(daily_limit=500_000)
    gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH)
    halt = gate.on_trade_closed("t1", -600_000, day=DAY, at=42.0)  # worse than its worst case
    assert halt is not None
    assert halt.reason == Reason.DAILY_LOSS_LIMIT
    assert gate.kill_switch.halt == halt
    assert gate.kill_switch.history[-1].by == "loss-limits"
    assert gate.halted
    for verdict in (gate.check(PROPOSAL, day=NEXT_DAY, available_cash=CASH), gate.check_exit()):
        assert isinstance(verdict, Refused)
        assert verdict.reason == Reason.KILL_SWITCH
    assert gate.release(at=50.0, by="ops") is True
    assert not gate.halted
    assert not gate.loss_limits.halted
    assert gate.check(PROPOSAL, day=NEXT_DAY, available_cash=CASH) is ALLOWED
    # Released the same day, the day is still over its limit: no room for a new trade.
    refused = gate.check(PROPOSAL, day=DAY, available_cash=CASH)
    assert isinstance(refused, Refused)
    assert refused.reason == Reason.DAILY_LOSS_LIMIT


def test_failures_in_a_row_halt_through_the_kill_switch() -> None:
    gate = make_gate()
    assert gate.on_execution(False, at=1.0) is None
    assert gate.on_execution(False, at=2.0) is None
    assert not gate.halted
    halt = gate.on_execution(False, at=3.0)
    assert halt is not None
    assert gate.kill_switch.halt == halt
    assert gate.kill_switch.history[-1].by == "stop-conditions"
    assert gate.kill_switch.history[-1].halt.automatic


def test_late_market_data_halts_through_the_kill_switch() -> None:
    gate = make_gate()
    assert gate.on_source_latency(1.0, at=1.0) is None
    halt = gate.on_source_latency(2.5, at=2.0)
    assert halt is not None
    assert halt.reason == Reason.SOURCE_LATENCY
    assert gate.kill_switch.engaged


def test_a_manual_halt_is_kept_over_a_later_automatic_one() -> None:
    gate = make_gate()
    assert gate.engage("suspicious fills", at=1.0, by="ops")
    gate.on_source_latency(9.0, at=2.0)
    assert gate.kill_switch.halt is not None
    assert gate.kill_switch.halt.reason == Reason.MANUAL
    assert gate.stop_conditions.halted  # the guard's own halt is still recorded
    gate.release(at=3.0, by="ops")
    assert not gate.stop_conditions.halted
    assert gate.check(PROPOSAL, day=DAY, available_cash=CASH) is ALLOWED


def test_a_switch_released_around_the_gate_leaves_the_halted_guard_refusing() -> None:
    gate = make_gate()
    gate.on_source_latency(9.0, at=1.0)
    gate.kill_switch.release(at=2.0, by="someone")
    verdict = gate.check(PROPOSAL, day=DAY, available_cash=CASH)
    assert isinstance(verdict, Refused)
    assert verdict.guard == Guard.STOP_CONDITIONS
    assert isinstance(gate.check_exit(), Refused)


def test_an_exit_is_refused_only_by_a_halt() -> None:
    gate = make_gate(max_concurrent_trades=1, min_order_value=10**9)
    gate.trade_limits.open("other", HYNIX, 1)
    gate.loss_limits.record(-500_000, DAY, at=0.0)  # no room left, but not past the limit
    assert gate.check_exit() is ALLOWED
    gate.record_pnl(-1, day=DAY, at=1.0)
    verdict = gate.check_exit()
    assert isinstance(verdict, Refused)
    assert verdict.reason == Reason.KILL_SWITCH


def test_a_cancelled_trade_gives_back_its_slot_and_room_with_no_pnl() -> None:
    gate = make_gate(max_concurrent_trades=1)
    gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH)
    gate.on_trade_cancelled("t1")
    assert dict(gate.open_trades) == {}
    assert gate.loss_limits.reserved == 0
    assert gate.loss_limits.cumulative_pnl == 0
    assert gate.admit("t2", PROPOSAL, day=DAY, available_cash=CASH) is ALLOWED


def test_the_trade_book_stays_exact_under_misuse() -> None:
    gate = make_gate()
    gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH)
    with pytest.raises(DuplicateTrade):
        gate.admit("t1", PROPOSAL, day=DAY, available_cash=CASH)
    with pytest.raises(UnknownTrade):
        gate.on_trade_closed("t9", -1, day=DAY, at=1.0)
    with pytest.raises(UnknownTrade):
        gate.on_trade_cancelled("t9")
    with pytest.raises(TypeError):
        gate.on_trade_closed("t1", -0.5, day=DAY, at=1.0)  # type: ignore[arg-type]
    assert set(gate.open_trades) == {"t1"}
    assert gate.loss_limits.reserved == 100_000
    assert gate.loss_limits.cumulative_pnl == 0


def test_release_with_nothing_halted_is_a_no_op() -> None:
    gate = make_gate()
    assert gate.release(at=1.0, by="ops") is False
    assert gate.kill_switch.history == ()


def test_a_gate_built_on_a_restored_halt_refuses_from_the_start() -> None:
    halted = KillSwitch(Halt(reason="manual", detail="restored", at=0.0, automatic=False))
    gate = RiskGate(
        capital_cap=CapitalCap(1_000_000),
        loss_limits=LossLimits(None, None),
        trade_limits=TradeLimits(None, None),
        pre_trade=PreTradeValidator(0),
        stop_conditions=StopConditions(None, None),
        kill_switch=halted,
    )
    verdict = gate.check(PROPOSAL, day=DAY, available_cash=CASH)
    assert isinstance(verdict, Refused)
    assert verdict.reason == Reason.KILL_SWITCH
