"""Proxy fault rules: their strict shape, and how one ``FaultPlan`` decides them per
connection (meeting, first/every, seeded probability, reach, windows)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mocks.faults import (
    FaultPlan,
    FaultRule,
    FeedEvent,
    FeedFaultRule,
    ProxyDecision,
    ProxyEvent,
    ProxyFaultRule,
    Request,
)


def rule(**fields: Any) -> ProxyFaultRule:
    return ProxyFaultRule.model_validate(fields)


def connect(n: int) -> ProxyEvent:
    return ProxyEvent("connect", n)


def tick(n: int) -> ProxyEvent:
    return ProxyEvent("tick", n)


def ids(decisions: list[ProxyDecision]) -> list[str]:
    return [decision.rule_id for decision in decisions]


# ---- the rule's shape

EXAMPLES = [
    {"what": {"kind": "latency", "seconds": 0.2, "jitter": 0.05}},
    {"what": {"kind": "latency", "seconds": 0, "jitter": 0.05}},
    {
        "what": {"kind": "bandwidth", "bytes_per_second": 65536},
        "where": {"direction": "downstream"},
    },
    {"what": {"kind": "blackhole"}, "where": {"direction": "upstream"}, "when": {"for": 30}},
    {"what": {"kind": "reset"}, "where": {"connection": 2}},
    {"what": {"kind": "close-after", "bytes": 1024}, "where": {"direction": "downstream"}},
    {"what": {"kind": "close-after", "bytes": 0}},
    {"what": {"kind": "slow-close", "seconds": 5}},
    {"what": {"kind": "refuse"}, "when": {"for": 10}},
    {"what": {"kind": "cut"}, "when": {"from": 60, "probability": 0.5}},
]


@pytest.mark.parametrize("fields", EXAMPLES)
def test_every_documented_kind_is_accepted_and_round_trips(fields: dict[str, Any]) -> None:
    parsed = ProxyFaultRule.model_validate(fields)
    again = ProxyFaultRule.model_validate(
        parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    assert again == parsed


BAD = [
    ({"what": {"kind": "latency", "seconds": 0}}, "changes nothing"),
    ({"what": {"kind": "latency", "seconds": -1}}, "greater than or equal to 0"),
    ({"what": {"kind": "latency", "seconds": 1, "jiter": 1}}, "Extra inputs"),
    ({"what": {"kind": "bandwidth", "bytes_per_second": 0}}, "greater than 0"),
    ({"what": {"kind": "bandwidth"}}, "bytes_per_second"),
    ({"what": {"kind": "close-after", "bytes": -1}}, "greater than or equal to 0"),
    ({"what": {"kind": "slow-close", "seconds": 0}}, "greater than 0"),
    ({"what": {"kind": "reset"}, "where": {"direction": "upstream"}}, "remove where.direction"),
    ({"what": {"kind": "cut"}, "where": {"direction": "downstream"}}, "whole connections"),
    ({"what": {"kind": "blackhole"}, "where": {"direction": "sideways"}}, "upstream"),
    ({"what": {"kind": "blackhole"}, "where": {"connection": 0}}, "greater than or equal to 1"),
    ({"what": {"kind": "stall"}}, "does not match any of the expected tags"),
    ({"what": {"kind": "refuse"}, "when": {"probability": 2}}, "less than or equal to 1"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_a_bad_rule_is_an_error_that_says_why(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProxyFaultRule.model_validate(fields)


def test_covers_looks_at_event_kind_direction_and_connection() -> None:
    slow_up = rule(what={"kind": "latency", "seconds": 1}, where={"direction": "upstream"})
    assert slow_up.covers(ProxyEvent("data", 3, "upstream"))
    assert not slow_up.covers(ProxyEvent("data", 3, "downstream"))
    assert not slow_up.covers(connect(3))
    refuse_two = rule(what={"kind": "refuse"}, where={"connection": 2})
    assert refuse_two.covers(connect(2))
    assert not refuse_two.covers(connect(1))
    assert not refuse_two.covers(ProxyEvent("data", 2, "upstream"))
    assert not rule(what={"kind": "cut"}).covers(connect(1))


# ---- deciding per connection


def test_rules_are_in_force_on_the_connections_their_where_selects() -> None:
    plan = FaultPlan()
    plan.add(rule(id="all", what={"kind": "latency", "seconds": 1}), now=0)
    plan.add(rule(id="two", what={"kind": "blackhole"}, where={"connection": 2}), now=0)
    assert ids(plan.in_force(connect(1), 0)) == ["all"]
    assert ids(plan.in_force(connect(2), 0)) == ["all", "two"]
    [_, hole] = plan.in_force(ProxyEvent("data", 2, "upstream"), 1)
    assert hole.kind == "blackhole"
    assert hole.direction is None


def test_first_and_every_count_connections_not_chunks() -> None:
    plan = FaultPlan()
    plan.add(rule(id="first", what={"kind": "refuse"}, when={"first": 2}), now=0)
    plan.add(rule(id="third", what={"kind": "reset"}, when={"every": 3}), now=0)
    chosen = [ids(plan.in_force(connect(n), 0)) for n in range(1, 7)]
    assert chosen == [["first"], ["first"], ["third"], [], [], ["third"]]
    # Asking again about a connection gives the same answer; nothing more is counted.
    for _ in range(5):
        assert ids(plan.in_force(ProxyEvent("data", 1, "upstream"), 1)) == ["first"]
    counters = {r["id"]: (r["matched"], r["applied"]) for r in plan.rules()}
    assert counters == {"first": (6, 2), "third": (6, 2)}


def faulted(seed: int, connections: range, extra_rule: bool = False) -> list[int]:
    plan = FaultPlan(seed=seed)
    if extra_rule:
        plan.add(
            rule(id="noise", what={"kind": "latency", "seconds": 1}, when={"probability": 0.5}), 0
        )
    plan.add(rule(id="flaky", what={"kind": "reset"}, when={"probability": 0.3}), now=0)
    return [n for n in connections if "flaky" in ids(plan.in_force(connect(n), 0))]


def test_probability_is_drawn_once_per_connection_from_the_seed() -> None:
    picked = faulted(7, range(1, 201))
    assert picked == faulted(7, range(1, 201))
    assert picked != faulted(8, range(1, 201))
    assert 40 <= len(picked) <= 80  # about 30 % of 200


def test_a_connections_draw_depends_on_nothing_but_seed_rule_and_number() -> None:
    # Other rules' draws, or meeting connections in another order, change nothing.
    picked = faulted(7, range(1, 101))
    assert faulted(7, range(1, 101), extra_rule=True) == picked
    assert sorted(faulted(7, range(100, 0, -1))) == picked


def test_cut_passes_new_connections_by_and_takes_open_ones() -> None:
    plan = FaultPlan()
    plan.add(rule(id="cut", what={"kind": "cut"}, when={"first": 1}), now=0)
    assert plan.in_force(connect(1), 0) == []  # opened while the cut is in force: spared
    assert plan.in_force(ProxyEvent("data", 1, "upstream"), 1) == []  # and stays spared
    plan.add(rule(id="cut-later", what={"kind": "cut"}, when={"from": 10}), now=0)
    assert plan.in_force(tick(1), 5) == []
    assert ids(plan.in_force(tick(1), 10)) == ["cut-later"]
    assert plan.rules()[0]["matched"] == 0  # a cut counts only connections it can reach


def test_refuse_reaches_only_new_connections_and_open_ones_do_not_use_up_first() -> None:
    plan = FaultPlan()
    assert plan.in_force(connect(1), 0) == []
    plan.add(rule(id="refuse", what={"kind": "refuse"}, when={"first": 1}), now=1)
    assert plan.in_force(tick(1), 1) == []
    assert ids(plan.in_force(connect(2), 2)) == ["refuse"]
    assert plan.in_force(connect(3), 3) == []


def test_a_connection_meets_a_rule_only_inside_its_window() -> None:
    plan = FaultPlan()
    plan.add(
        rule(id="r", what={"kind": "reset"}, when={"from": 10, "until": 20, "first": 1}), now=0
    )
    assert plan.in_force(connect(1), 0) == []  # before the window: not counted
    assert plan.in_force(connect(2), 5) == []
    assert ids(plan.in_force(tick(2), 10)) == ["r"]  # the first one met in the window
    assert plan.in_force(tick(1), 10) == []
    assert plan.in_force(tick(2), 20) == []  # the window closed


def test_decide_answers_the_first_rule_that_acts_on_the_event() -> None:
    plan = FaultPlan()
    plan.add(
        rule(id="down", what={"kind": "latency", "seconds": 1}, where={"direction": "downstream"}),
        0,
    )
    plan.add(rule(id="both", what={"kind": "bandwidth", "bytes_per_second": 10}), 0)
    plan.add(rule(id="close", what={"kind": "slow-close", "seconds": 1}), 0)
    up = plan.decide(ProxyEvent("data", 1, "upstream"), 1)
    down = plan.decide(ProxyEvent("data", 1, "downstream"), 1)
    closing = plan.decide(ProxyEvent("close", 1, "upstream"), 1)
    assert (up and up.rule_id, down and down.rule_id) == ("both", "down")
    assert closing is not None
    assert closing.rule_id == "close"
    assert plan.decide(connect(1), 1) is None


def test_proxy_events_and_other_subjects_never_meet_each_others_rules() -> None:
    plan = FaultPlan()
    plan.add(FaultRule.model_validate({"what": {"kind": "reset"}}), now=0)
    plan.add(FeedFaultRule.model_validate({"what": {"kind": "reset"}}), now=0)
    assert plan.in_force(connect(1), 0) == []
    assert plan.decide(connect(1), 0) is None
    plan.clear()
    plan.add(rule(what={"kind": "reset"}), now=0)
    assert plan.decide(Request("GET", "/x"), 0) is None
    assert plan.decide(FeedEvent("connect", 1), 0) is None
    assert plan.decide(connect(1), 0) is not None


def test_forget_drops_what_rules_remember_of_a_closed_connection() -> None:
    plan = FaultPlan()
    plan.add(rule(id="r", what={"kind": "reset"}, when={"probability": 1}), now=0)
    assert ids(plan.in_force(connect(1), 0)) == ["r"]
    plan.forget(1)
    assert ids(plan.in_force(connect(1), 0)) == ["r"]  # met afresh: a new connection 1
    assert plan.rules()[0]["matched"] == 2


def test_next_boundary_is_the_next_window_edge_of_a_proxy_rule() -> None:
    plan = FaultPlan()
    assert plan.next_boundary(0) is None
    plan.add(FaultRule.model_validate({"what": {"kind": "reset"}, "when": {"from": 1}}), now=0)
    assert plan.next_boundary(0) is None  # HTTP rules don't need the proxy to look
    plan.add(rule(what={"kind": "cut"}, when={"from": 10, "until": 20}), now=0)
    plan.add(rule(what={"kind": "blackhole"}, when={"for": 5}), now=2)
    assert [plan.next_boundary(t) for t in (0, 2, 7, 10, 19.9, 20)] == [2, 7, 10, 20, 20, None]


def test_watchers_hear_of_every_change_of_rules() -> None:
    plan = FaultPlan()
    heard: list[int] = []
    plan.watch(lambda: heard.append(len(plan.rules())))
    plan.add(rule(id="a", what={"kind": "cut"}), now=0)
    plan.add(rule(id="b", what={"kind": "cut"}), now=0)
    plan.remove("a")
    plan.remove("missing")
    plan.clear()
    plan.add(rule(what={"kind": "cut"}), now=0)
    plan.reset()
    assert heard == [1, 2, 1, 0, 1, 0]


def test_derived_rngs_are_seeded_per_stream() -> None:
    plan, same, other = FaultPlan(seed=3), FaultPlan(seed=3), FaultPlan(seed=4)
    draws = [plan.derived_rng("proxy:1:upstream").random() for _ in range(3)]
    assert draws == [same.derived_rng("proxy:1:upstream").random() for _ in range(3)]
    assert draws[0] != plan.derived_rng("proxy:2:upstream").random()
    assert draws[0] != other.derived_rng("proxy:1:upstream").random()
