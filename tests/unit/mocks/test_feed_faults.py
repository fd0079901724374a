"""Feed fault rules in the shared fault model: shape, targeting and decisions, without sockets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mocks.faults import (
    FaultPlan,
    FaultRule,
    FeedEvent,
    FeedFaultRule,
    FrameDelay,
    Request,
    Stall,
)

FRAME = FeedEvent("frame", 1, "H0STCNT0", "005930")
BOOK_FRAME = FeedEvent("frame", 2, "H0STASP0", "000660")
SUBSCRIBE = FeedEvent("subscribe", 1, "H0STCNT0", "005930")
PING = FeedEvent("pingpong", 1, "PINGPONG")
PRICE = Request("GET", "/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100")


def rule(**fields: Any) -> FeedFaultRule:
    return FeedFaultRule.model_validate(fields)


@pytest.mark.parametrize(
    "what",
    [
        {"kind": "close", "code": 4001, "reason": "bye"},
        {"kind": "reset"},
        {"kind": "stall", "seconds": 30},
        {"kind": "stall"},
        {"kind": "delay", "seconds": 2.5},
        {"kind": "delay", "low": 1, "high": 2},
        {"kind": "duplicate", "copies": 2},
        {"kind": "reorder"},
        {"kind": "gap"},
        {"kind": "malformed", "text": "0|H0STCNT0|zz|"},
        {"kind": "reject", "code": "OPSP0008"},
        {"kind": "restart", "seconds": 5},
        {"kind": "slow-reader", "seconds": 20},
        {"kind": "close", "all_connections": True},
    ],
)
def test_every_feed_action_round_trips_as_json(what: dict[str, Any]) -> None:
    stored = rule(what=what)
    dumped = stored.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert {key: dumped["what"][key] for key in what} == what
    assert FeedFaultRule.model_validate(dumped) == stored


@pytest.mark.parametrize(
    "bad",
    [
        {"what": {"kind": "error", "code": "EGW00201"}},  # an HTTP action is no feed action
        {"what": {"kind": "stall", "seconds": 0}},
        {"what": {"kind": "slow-reader"}},
        {"what": {"kind": "close", "code": 999}},
        {"what": {"kind": "reject", "code": "opsp 1"}},
        {"what": {"kind": "delay"}},
        {"what": {"kind": "gap"}, "where": {"event": "frames"}},
        {"what": {"kind": "gap"}, "where": {"path": "/"}},
        {"what": {"kind": "gap"}, "where": {"connection": 0}},
        {"what": {"kind": "duplicate", "copies": 0}},
    ],
)
def test_strict_feed_rules_reject_mistakes(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeedFaultRule.model_validate(bad)


def test_http_rules_refuse_feed_actions() -> None:
    with pytest.raises(ValidationError):
        FaultRule.model_validate({"what": {"kind": "stall"}})


def test_where_matches_event_tr_id_tr_key_and_connection() -> None:
    plan = FaultPlan()
    plan.add(
        rule(
            where={"event": "frame", "tr_id": "h0stcnt0", "tr_key": "005930", "connection": 1},
            what={"kind": "gap"},
        ),
        now=0,
    )
    assert plan.decide(FRAME, 1.0) is not None
    assert plan.decide(BOOK_FRAME, 1.0) is None
    assert plan.decide(FeedEvent("frame", 2, "H0STCNT0", "005930"), 1.0) is None
    assert plan.decide(FeedEvent("frame", 1, "H0STCNT0", "000660"), 1.0) is None


def test_an_action_only_counts_the_events_it_can_act_on() -> None:
    plan = FaultPlan()
    plan.add(rule(id="dup", what={"kind": "duplicate"}, when={"first": 1}), now=0)
    plan.add(rule(id="no", what={"kind": "reject"}), now=0)
    assert plan.decide(SUBSCRIBE, 0.0) is not None  # the reject: duplicate skips subscribes
    decision = plan.decide(FRAME, 0.0)
    assert decision is not None
    assert decision.rule_id == "dup"
    assert plan.decide(FRAME, 0.0) is None  # first: 1 used up; reject never sees frames
    listed = {row["id"]: (row["matched"], row["applied"]) for row in plan.rules()}
    assert listed == {"dup": (2, 1), "no": (1, 1)}


def test_connection_actions_fire_at_any_event() -> None:
    plan = FaultPlan()
    plan.add(rule(what={"kind": "stall", "seconds": 3}), now=0)
    for event in (FRAME, SUBSCRIBE, PING, FeedEvent("connect", 4)):
        decision = plan.decide(event, 0.0)
        assert decision is not None
        assert decision.action == Stall(seconds=3)


def test_feed_and_http_rules_never_see_each_others_subjects() -> None:
    plan = FaultPlan()
    plan.add(FaultRule.model_validate({"what": {"kind": "reset"}}), now=0)
    assert plan.decide(FRAME, 0.0) is None
    plan.clear()
    plan.add(rule(what={"kind": "reset"}), now=0)
    assert plan.decide(PRICE, 0.0) is None
    assert plan.decide(FRAME, 0.0) is not None


def test_same_window_and_seeded_draws_as_http_rules() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(seed=seed)
        plan.add(rule(what={"kind": "gap"}, when={"probability": 0.3, "from": 10}), now=0)
        return [plan.decide(FRAME, 10.0 + i) is not None for i in range(200)]

    assert pattern(4) == pattern(4)
    assert pattern(4) != pattern(5)
    plan = FaultPlan()
    stored = plan.add(rule(what={"kind": "gap"}, when={"for": 5}), now=20.0)
    assert (stored.when.from_, stored.when.until) == (20.0, 25.0)
    assert [plan.decide(FRAME, t) is not None for t in (19.9, 20.0, 24.9, 25.0)] == [
        False,
        True,
        True,
        False,
    ]


def test_frame_delay_is_drawn_like_an_http_delay() -> None:
    plan = FaultPlan(seed=3)
    plan.add(rule(what={"kind": "delay", "low": 1, "high": 2}), now=0)
    delays = [plan.decide(FRAME, 0.0) for _ in range(20)]
    assert all(d is not None and isinstance(d.action, FrameDelay) for d in delays)
    assert all(d is not None and 1 <= d.delay <= 2 for d in delays)
    assert len({d.delay for d in delays if d is not None}) == 20
