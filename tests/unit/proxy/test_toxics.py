"""The proxy's fault logic (``mocks.proxy.toxics``) without sockets: chunks and clock readings
in, timed steps out."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mocks.faults import DIRECTIONS, Direction, FaultPlan, ProxyDecision, ProxyEvent, ProxyFaultRule
from mocks.proxy.toxics import Applied, Hangup, Link, Outcome, PassClose, Write

UP: Direction = "upstream"
DOWN: Direction = "downstream"


def toxic(
    what: dict[str, Any], direction: Direction | None = None, rule: str = "r1"
) -> ProxyDecision:
    action = ProxyFaultRule.model_validate({"what": what}).what
    return ProxyDecision(rule, action, direction=direction)


def link(seed: int = 0) -> Link:
    return Link({d: random.Random(f"{seed}:{d}") for d in DIRECTIONS})


def writes(outcome: Outcome) -> list[tuple[str, float, bytes]]:
    return [(s.direction, s.at, s.data) for s in outcome.steps if isinstance(s, Write)]


def test_without_rules_bytes_go_through_at_once_both_ways() -> None:
    connection = link()
    assert connection.open(0.0, []).steps == []
    assert writes(connection.receive(UP, b"query", 1.0, [])) == [(UP, 1.0, b"query")]
    assert writes(connection.receive(DOWN, b"rows", 1.5, [])) == [(DOWN, 1.5, b"rows")]
    assert connection.end(UP, 2.0, []).steps == [PassClose(UP, 2.0)]
    assert connection.received(UP) == 5
    assert connection.received(DOWN) == 4


# ---- latency


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_latency_delays_only_its_direction(direction: Direction) -> None:
    other: Direction = DOWN if direction == UP else UP
    rules = [toxic({"kind": "latency", "seconds": 0.25}, direction)]
    connection = link()
    assert writes(connection.receive(direction, b"a", 10.0, rules)) == [(direction, 10.25, b"a")]
    assert writes(connection.receive(other, b"b", 10.0, rules)) == [(other, 10.0, b"b")]


def test_latency_without_direction_delays_both_and_sums_with_another_rule() -> None:
    rules = [
        toxic({"kind": "latency", "seconds": 0.1}, rule="a"),
        toxic({"kind": "latency", "seconds": 0.2}, UP, rule="b"),
    ]
    connection = link()
    [(_, up_at, _)] = writes(connection.receive(UP, b"x", 0.0, rules))
    [(_, down_at, _)] = writes(connection.receive(DOWN, b"y", 0.0, rules))
    assert up_at == pytest.approx(0.3)
    assert down_at == pytest.approx(0.1)


def test_latency_is_journaled_once_per_direction() -> None:
    rules = [toxic({"kind": "latency", "seconds": 1})]
    connection = link()
    assert connection.receive(UP, b"1", 0, rules).applied == [Applied("r1", "latency", UP)]
    assert connection.receive(UP, b"2", 0, rules).applied == []
    assert connection.receive(DOWN, b"3", 0, rules).applied == [Applied("r1", "latency", DOWN)]


def test_jitter_draws_are_seeded_and_bounded() -> None:
    rules = [toxic({"kind": "latency", "seconds": 1.0, "jitter": 0.5})]

    def delays(seed: int) -> list[float]:
        # Chunks 2 s apart: no chunk waits for the one before, each shows its own draw.
        connection = link(seed)
        return [
            writes(connection.receive(UP, b"c", 2.0 * i, rules))[0][1] - 2.0 * i for i in range(200)
        ]

    first, again, other = delays(1), delays(1), delays(2)
    assert first == again  # same seed, same chunks: same delays
    assert first != other
    assert all(0.5 <= delay <= 1.5 for delay in first)
    assert min(first) < 0.6  # drawn across the whole range
    assert max(first) > 1.4


def test_jittered_chunks_close_together_never_overtake_each_other() -> None:
    rules = [toxic({"kind": "latency", "seconds": 1.0, "jitter": 0.5})]
    connection = link(5)
    times = [writes(connection.receive(DOWN, b"c", i * 0.01, rules))[0][1] for i in range(300)]
    assert times == sorted(times)
    assert all(at >= i * 0.01 + 0.5 for i, at in enumerate(times))


def test_jitter_never_makes_a_negative_delay() -> None:
    rules = [toxic({"kind": "latency", "seconds": 0.01, "jitter": 5})]
    connection = link(3)
    for i in range(50):
        [(_, at, _)] = writes(connection.receive(UP, b"z", float(i), rules))
        assert at >= i


def test_a_chunk_after_latency_ends_waits_for_the_delayed_one_before_it() -> None:
    connection = link()
    slow = [toxic({"kind": "latency", "seconds": 5})]
    assert writes(connection.receive(UP, b"first", 0.0, slow)) == [(UP, 5.0, b"first")]
    assert writes(connection.receive(UP, b"second", 1.0, [])) == [(UP, 5.0, b"second")]


def test_latency_delays_the_close_behind_the_bytes() -> None:
    rules = [toxic({"kind": "latency", "seconds": 2})]
    connection = link()
    connection.receive(DOWN, b"last rows", 1.0, rules)
    assert connection.end(DOWN, 1.5, rules).steps == [PassClose(DOWN, 3.5)]


# ---- bandwidth


def test_bandwidth_paces_a_chunk_in_tenth_of_a_second_slices() -> None:
    rules = [toxic({"kind": "bandwidth", "bytes_per_second": 1000})]
    connection = link()
    out = writes(connection.receive(DOWN, b"x" * 250, 0.0, rules))
    assert [at for _, at, _ in out] == pytest.approx([0.1, 0.2, 0.25])
    assert [len(data) for _, _, data in out] == [100, 100, 50]
    # The link is busy until 0.25: a chunk at 0.1 queues behind it.
    [(_, at, _)] = writes(connection.receive(DOWN, b"y" * 50, 0.1, rules))
    assert at == pytest.approx(0.3)
    # An idle link starts afresh.
    [(_, at, _)] = writes(connection.receive(DOWN, b"z" * 10, 5.0, rules))
    assert at == pytest.approx(5.01)


def test_bandwidth_throughput_matches_the_rate_over_many_chunks() -> None:
    rate = 50_000
    rules = [toxic({"kind": "bandwidth", "bytes_per_second": rate}, UP)]
    connection = link()
    total, last = 0, 0.0
    for i in range(100):
        for _, at, data in writes(connection.receive(UP, b"b" * 4096, i * 0.001, rules)):
            total += len(data)
            last = at
    assert total == 409_600
    assert last == pytest.approx(total / rate)
    assert writes(connection.receive(DOWN, b"free", 0.5, rules)) == [(DOWN, 0.5, b"free")]


def test_the_narrowest_bandwidth_wins_and_latency_comes_first() -> None:
    rules = [
        toxic({"kind": "bandwidth", "bytes_per_second": 10_000}, rule="wide"),
        toxic({"kind": "bandwidth", "bytes_per_second": 100}, rule="narrow"),
        toxic({"kind": "latency", "seconds": 1}, rule="slow"),
    ]
    connection = link()
    outcome = connection.receive(UP, b"x" * 20, 0.0, rules)
    assert [at for _, at, _ in writes(outcome)] == pytest.approx([1.1, 1.2])
    assert [len(data) for _, _, data in writes(outcome)] == [10, 10]
    assert {a.rule_id for a in outcome.applied} == {"narrow", "slow"}


def test_a_rate_below_ten_bytes_a_second_sends_byte_by_byte() -> None:
    rules = [toxic({"kind": "bandwidth", "bytes_per_second": 4})]
    out = writes(link().receive(UP, b"abcd", 0.0, rules))
    assert [(at, data) for _, at, data in out] == [
        (0.25, b"a"),
        (0.5, b"b"),
        (0.75, b"c"),
        (1.0, b"d"),
    ]


# ---- blackhole


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_blackhole_holds_bytes_and_close_until_lifted_then_releases_in_order(
    direction: Direction,
) -> None:
    other: Direction = DOWN if direction == UP else UP
    hole = [toxic({"kind": "blackhole"}, direction)]
    connection = link()
    held = connection.receive(direction, b"one ", 1.0, hole)
    assert held.steps == []
    assert held.applied == [Applied("r1", "blackhole", direction)]
    assert connection.receive(direction, b"two", 2.0, hole).steps == []
    assert connection.end(direction, 3.0, hole).steps == []
    assert connection.held_bytes(direction) == 7
    # The other direction flows.
    assert writes(connection.receive(other, b"ok", 2.0, hole)) == [(other, 2.0, b"ok")]
    # Still in force: nothing moves.
    assert connection.tick(4.0, hole).steps == []
    # Lifted: what was held goes through now, then the close.
    assert connection.tick(5.0, []).steps == [
        Write(direction, 5.0, b"one two"),
        PassClose(direction, 5.0),
    ]
    assert connection.held_bytes(direction) == 0


def test_bytes_after_a_lifted_blackhole_follow_the_held_ones() -> None:
    hole = [toxic({"kind": "blackhole"}, UP)]
    connection = link()
    connection.receive(UP, b"held-", 0.0, hole)
    assert writes(connection.receive(UP, b"new", 1.0, [])) == [(UP, 1.0, b"held-new")]


def test_released_bytes_still_go_through_the_other_rules() -> None:
    hole = toxic({"kind": "blackhole"}, DOWN, rule="hole")
    slow = toxic({"kind": "latency", "seconds": 2}, DOWN, rule="slow")
    connection = link()
    connection.receive(DOWN, b"data", 0.0, [hole, slow])
    assert writes(connection.tick(10.0, [slow])) == [(DOWN, 12.0, b"data")]


# ---- reset, refuse, cut


def test_reset_at_connect_hangs_up_with_an_rst() -> None:
    connection = link()
    outcome = connection.open(0.0, [toxic({"kind": "reset"})])
    assert outcome.steps == [Hangup("reset", 0.0)]
    assert outcome.applied == [Applied("r1", "reset")]
    assert connection.closed
    assert connection.receive(UP, b"late", 1.0, []).steps == []
    assert connection.end(UP, 1.0, []).steps == []


def test_refuse_at_connect_is_told_apart_from_reset() -> None:
    outcome = link().open(0.0, [toxic({"kind": "refuse"}), toxic({"kind": "reset"}, rule="r2")])
    assert outcome.hangup == Hangup("refused", 0.0)
    assert outcome.applied == [Applied("r1", "refuse")]


def test_an_open_connection_is_reset_when_the_rule_comes_into_force() -> None:
    connection = link()
    connection.open(0.0, [])
    connection.receive(UP, b"fine", 1.0, [])
    assert connection.tick(5.0, [toxic({"kind": "reset"})]).hangup == Hangup("reset", 5.0)
    assert connection.tick(6.0, [toxic({"kind": "reset"})]).steps == []


def test_cut_ends_an_open_connection_and_refuse_leaves_it_alone() -> None:
    connection = link()
    connection.open(0.0, [])
    assert connection.tick(1.0, [toxic({"kind": "refuse"})]).steps == []
    assert writes(connection.receive(UP, b"x", 1.5, [toxic({"kind": "refuse"})])) != []
    outcome = connection.receive(DOWN, b"y", 2.0, [toxic({"kind": "cut"}, rule="cut")])
    assert outcome.steps == [Hangup("cut", 2.0)]
    assert outcome.applied == [Applied("cut", "cut")]


def test_cut_does_nothing_at_connect() -> None:
    assert link().open(0.0, [toxic({"kind": "cut"})]).steps == []


# ---- close-after


def test_close_after_splits_the_chunk_that_crosses_the_limit() -> None:
    rules = [toxic({"kind": "close-after", "bytes": 10}, DOWN)]
    connection = link()
    assert writes(connection.receive(DOWN, b"123456", 0.0, rules)) == [(DOWN, 0.0, b"123456")]
    assert writes(connection.receive(UP, b"not counted", 0.5, rules)) == [(UP, 0.5, b"not counted")]
    outcome = connection.receive(DOWN, b"7890abc", 1.0, rules)
    assert outcome.steps == [Write(DOWN, 1.0, b"7890"), Hangup("fin", 1.0, after=DOWN)]
    assert outcome.applied == [Applied("r1", "close-after", DOWN)]
    assert connection.closed


def test_close_after_exactly_n_bytes_closes_right_behind_them() -> None:
    rules = [toxic({"kind": "close-after", "bytes": 4}), toxic({"kind": "latency", "seconds": 3})]
    outcome = link().receive(UP, b"abcd", 1.0, rules)
    assert outcome.steps == [Write(UP, 4.0, b"abcd"), Hangup("fin", 4.0, after=UP)]


def test_close_after_zero_closes_at_the_first_byte_without_forwarding_it() -> None:
    rules = [toxic({"kind": "close-after", "bytes": 0}, UP)]
    connection = link()
    assert writes(connection.receive(DOWN, b"greeting", 0.0, rules)) == [(DOWN, 0.0, b"greeting")]
    assert connection.receive(UP, b"hello", 1.0, rules).steps == [Hangup("fin", 1.0, after=UP)]


def test_close_after_counts_from_when_it_comes_into_force() -> None:
    connection = link()
    connection.receive(UP, b"x" * 100, 0.0, [])
    rules = [toxic({"kind": "close-after", "bytes": 3})]
    assert connection.receive(UP, b"ab", 1.0, rules).hangup is None
    assert connection.receive(UP, b"cd", 2.0, rules).steps == [
        Write(UP, 2.0, b"c"),
        Hangup("fin", 2.0, after=UP),
    ]


def test_close_after_with_both_directions_counts_each_on_its_own() -> None:
    rules = [toxic({"kind": "close-after", "bytes": 5})]
    connection = link()
    assert connection.receive(UP, b"abc", 0.0, rules).hangup is None
    assert connection.receive(DOWN, b"abc", 0.0, rules).hangup is None
    assert connection.receive(DOWN, b"def", 0.0, rules).hangup == Hangup("fin", 0.0, after=DOWN)


# ---- slow-close


def test_slow_close_holds_the_close_in_its_direction_only() -> None:
    rules = [toxic({"kind": "slow-close", "seconds": 4}, UP)]
    connection = link()
    outcome = connection.end(UP, 1.0, rules)
    assert outcome.steps == [PassClose(UP, 5.0)]
    assert outcome.applied == [Applied("r1", "slow-close", UP)]
    assert connection.end(DOWN, 1.0, rules).steps == [PassClose(DOWN, 1.0)]


def test_slow_close_comes_on_top_of_the_queued_bytes() -> None:
    rules = [toxic({"kind": "slow-close", "seconds": 1}), toxic({"kind": "latency", "seconds": 2})]
    connection = link()
    connection.receive(DOWN, b"bye", 0.0, rules)
    # The FIN at 0.5 takes the 2 s path (2.5), then waits out the slow close.
    assert connection.end(DOWN, 0.5, rules).steps == [PassClose(DOWN, 3.5)]
    assert connection.end(DOWN, 0.6, rules).steps == []  # one close per direction


# ---- windows: the plan's rules over time, through the pure logic


def test_a_window_opens_and_closes_on_the_clock() -> None:
    plan = FaultPlan(seed=1)
    plan.add(
        ProxyFaultRule.model_validate(
            {"what": {"kind": "latency", "seconds": 1}, "when": {"from": 10, "until": 20}}
        ),
        now=0.0,
    )
    connection = link()

    def send(at: float) -> float:
        decisions = plan.in_force(ProxyEvent("data", 1, UP), at)
        return writes(connection.receive(UP, b".", at, decisions))[0][1]

    assert send(5.0) == 5.0
    assert send(10.0) == 11.0
    assert send(19.5) == 20.5
    assert send(20.0) == 20.5  # out of the window, but never ahead of the chunk before
    assert send(30.0) == 30.0


def test_a_blackhole_window_releases_its_bytes_at_the_tick_that_closes_it() -> None:
    plan = FaultPlan()
    plan.add(
        ProxyFaultRule.model_validate({"what": {"kind": "blackhole"}, "when": {"for": 30}}),
        now=0.0,
    )
    connection = link()
    assert plan.next_boundary(0.0) == 30.0
    inside = plan.in_force(ProxyEvent("data", 1, DOWN), 1.0)
    assert connection.receive(DOWN, b"late", 1.0, inside).steps == []
    assert connection.tick(30.0, plan.in_force(ProxyEvent("tick", 1), 30.0)).steps == [
        Write(DOWN, 30.0, b"late")
    ]
