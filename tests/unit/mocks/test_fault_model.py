import pytest
from pydantic import ValidationError

from mocks.faults import Decision, FaultPlan, FaultRule, Request

PRICE = Request("GET", "/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100")
ORDER = Request("POST", "/uapi/domestic-stock/v1/trading/order-cash", "TTTC0012U")


def rule(**fields: object) -> FaultRule:
    return FaultRule.model_validate(fields)


def decide_many(plan: FaultPlan, request: Request, times: list[float]) -> list[Decision | None]:
    return [plan.decide(request, t) for t in times]


def test_where_matches_path_glob_method_and_tr_id_case_insensitively() -> None:
    plan = FaultPlan()
    plan.add(
        rule(
            where={"path": "/uapi/*/quotations/*", "method": "get", "tr_id": "fhkst01010100"},
            what={"kind": "error", "code": "EGW00201"},
        ),
        now=0,
    )
    assert plan.decide(PRICE, 1.0) is not None
    assert plan.decide(ORDER, 1.0) is None
    assert plan.decide(Request("GET", PRICE.path, None), 1.0) is None


def test_window_from_until() -> None:
    plan = FaultPlan()
    plan.add(rule(what={"kind": "reset"}, when={"from": 10, "until": 20}), now=0)
    fired = [d is not None for d in decide_many(plan, PRICE, [9.99, 10.0, 19.99, 20.0])]
    assert fired == [False, True, True, False]


def test_for_is_pinned_to_the_moment_the_rule_is_added() -> None:
    plan = FaultPlan()
    stored = plan.add(rule(what={"kind": "close"}, when={"for": 5}), now=100.0)
    assert stored.when.from_ == 100.0
    assert stored.when.until == 105.0
    assert plan.decide(PRICE, 99.0) is None
    assert plan.decide(PRICE, 104.9) is not None
    assert plan.decide(PRICE, 105.0) is None


def test_first_n_then_pass_through() -> None:
    plan = FaultPlan()
    plan.add(rule(what={"kind": "error", "code": "EGW00123"}, when={"first": 2}), now=0)
    fired = [d is not None for d in decide_many(plan, PRICE, [1, 2, 3, 4])]
    assert fired == [True, True, False, False]


def test_every_nth() -> None:
    plan = FaultPlan()
    plan.add(rule(what={"kind": "empty"}, when={"every": 3}), now=0)
    fired = [d is not None for d in decide_many(plan, PRICE, [float(i) for i in range(9)])]
    assert fired == [False, False, True] * 3


def test_probability_is_seeded_and_reproducible() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(seed=seed)
        plan.add(rule(what={"kind": "reset"}, when={"probability": 0.3}), now=0)
        return [plan.decide(PRICE, float(i)) is not None for i in range(200)]

    assert pattern(5) == pattern(5)
    assert pattern(5) != pattern(6)
    assert 30 <= sum(pattern(5)) <= 90  # about 60 of 200


def test_reset_replays_the_same_draws() -> None:
    plan = FaultPlan(seed=9)
    plan.add(rule(what={"kind": "reset"}, when={"probability": 0.5}), now=0)
    before = [plan.decide(PRICE, 0.0) is not None for _ in range(50)]
    plan.reset()
    plan.add(rule(what={"kind": "reset"}, when={"probability": 0.5}), now=0)
    assert [plan.decide(PRICE, 0.0) is not None for _ in range(50)] == before


def test_delay_distributions() -> None:
    plan = FaultPlan(seed=1)
    plan.add(rule(id="fixed", what={"kind": "delay", "seconds": 2.5}, when={"first": 1}), 0)
    plan.add(rule(id="uniform", what={"kind": "delay", "low": 1, "high": 2}, when={"first": 50}), 0)
    first = plan.decide(PRICE, 0)
    assert first is not None
    assert (first.rule_id, first.delay) == ("fixed", 2.5)
    delays = [d.delay for d in decide_many(plan, PRICE, [0.0] * 50) if d]
    assert len(delays) == 50
    assert all(1 <= d <= 2 for d in delays)
    assert len(set(delays)) > 40


def test_lognormal_delay_has_its_median() -> None:
    plan = FaultPlan(seed=2)
    plan.add(rule(what={"kind": "delay", "median": 0.2, "sigma": 0.8}), now=0)
    delays = sorted(d.delay for d in decide_many(plan, PRICE, [0.0] * 1001) if d)
    assert 0.15 < delays[500] < 0.27


def test_first_matching_rule_wins_in_insertion_order() -> None:
    plan = FaultPlan()
    plan.add(rule(id="a", where={"tr_id": "TTTC0012U"}, what={"kind": "reset"}), 0)
    plan.add(rule(id="b", what={"kind": "close"}), 0)
    order, price = plan.decide(ORDER, 0), plan.decide(PRICE, 0)
    assert order is not None
    assert price is not None
    assert (order.rule_id, price.rule_id) == ("a", "b")


def test_counters_and_removal() -> None:
    plan = FaultPlan()
    plan.add(rule(id="x", what={"kind": "reset"}, when={"first": 1}), 0)
    decide_many(plan, PRICE, [0, 0, 0])
    (listed,) = plan.rules()
    assert (listed["matched"], listed["applied"]) == (3, 1)
    assert plan.remove("x")
    assert not plan.remove("x")
    assert plan.decide(PRICE, 0) is None


def test_duplicate_ids_are_refused() -> None:
    plan = FaultPlan()
    plan.add(rule(id="x", what={"kind": "reset"}), 0)
    with pytest.raises(ValueError, match="already exists"):
        plan.add(rule(id="x", what={"kind": "close"}), 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"what": {"kind": "explode"}},
        {"what": {"kind": "reset"}, "whn": {}},
        {"what": {"kind": "delay"}},
        {"what": {"kind": "delay", "seconds": 1, "median": 1, "sigma": 1}},
        {"what": {"kind": "delay", "low": 3, "high": 1}},
        {"what": {"kind": "reset"}, "when": {"until": 5, "for": 3}},
        {"what": {"kind": "reset"}, "when": {"from": 5, "until": 5}},
        {"what": {"kind": "reset"}, "when": {"probability": 1.5}},
        {"what": {"kind": "error", "status": 99}},
    ],
)
def test_strict_rules_reject_mistakes(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FaultRule.model_validate(bad)
