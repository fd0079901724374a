"""KillSwitch: refuses everything while engaged; its history is the audit trail."""

from __future__ import annotations

from system.trading.risk import ALLOWED, Halt, KillSwitch, Reason, Refused, SwitchEvent


def test_an_engaged_switch_refuses_and_a_released_one_allows() -> None:
    switch = KillSwitch()
    assert not switch.engaged
    assert switch.check() is ALLOWED
    assert switch.engage("manual", "market looks wrong", at=5.0, automatic=False, by="ops")
    assert switch.engaged
    refused = switch.check()
    assert isinstance(refused, Refused)
    assert (refused.guard, refused.reason) == ("kill-switch", Reason.KILL_SWITCH)
    assert "market looks wrong" in refused.detail
    assert "by hand" in refused.detail
    assert switch.release(at=9.0, by="ops")
    assert switch.check() is ALLOWED
    assert switch.halt is None


def test_engaging_twice_keeps_the_first_reason() -> None:
    switch = KillSwitch()
    switch.engage("daily-loss-limit", "lost too much", at=1.0, automatic=True, by="loss-limits")
    assert not switch.engage("manual", "second", at=2.0, automatic=False, by="ops")
    assert switch.halt == Halt(
        reason="daily-loss-limit", detail="lost too much", at=1.0, automatic=True
    )
    assert len(switch.history) == 1


def test_releasing_a_switch_that_is_not_engaged_is_a_no_op() -> None:
    switch = KillSwitch()
    assert switch.release(at=1.0, by="ops") is False
    assert switch.history == ()


def test_the_history_records_who_engaged_and_released_which_halt_and_when() -> None:
    switch = KillSwitch()
    switch.engage("source-latency", "feed 3 s late", at=10.0, automatic=True, by="stop-conditions")
    switch.release(at=20.0, by="alice")
    switch.engage("manual", "lunch", at=30.0, automatic=False, by="bob")
    latency = Halt(reason="source-latency", detail="feed 3 s late", at=10.0, automatic=True)
    lunch = Halt(reason="manual", detail="lunch", at=30.0, automatic=False)
    assert switch.history == (
        SwitchEvent(action="engaged", at=10.0, by="stop-conditions", halt=latency),
        SwitchEvent(action="released", at=20.0, by="alice", halt=latency),
        SwitchEvent(action="engaged", at=30.0, by="bob", halt=lunch),
    )


def test_a_switch_restored_engaged_refuses_from_the_start() -> None:
    restored = Halt(reason="manual", detail="before restart", at=0.0, automatic=False)
    switch = KillSwitch(restored)
    assert switch.engaged
    assert isinstance(switch.check(), Refused)
    assert switch.release(at=1.0, by="ops")
    assert switch.history[-1].halt == restored
