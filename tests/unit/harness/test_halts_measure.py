"""The ``halts`` measure: trading halts counted by reason and by who halted, in a window."""

from __future__ import annotations

from harness.expect import Evidence, HaltSeen, check
from harness.scenario import load_text

SCENARIO = load_text(
    "name: x\nduration: 100\nneeds: [broker, feed, trading]\n"
    "timeline:\n"
    "  - {name: crash, at: 40, market: {kind: gap, code: '005930', pct: -20}}\n"
    "expect:\n"
    "  - {halts: {reason: daily-loss-limit}, equals: 1, within: 2, since: crash}\n"
    "  - {halts: {}, equals: 1}\n"
    "  - {halts: {automatic: false}, equals: 0}\n",
    "test.yaml",
)


def verdicts(*halts: HaltSeen) -> list[tuple[bool, str]]:
    evidence = Evidence(duration=100.0, journal=[], calls=[], samples=[], halts=list(halts))
    return [
        (c.passed, c.observed)
        for c in (check(SCENARIO, e, evidence, None, "expectation") for e in SCENARIO.expect)
    ]


def test_a_halt_for_the_reason_in_its_window_is_counted() -> None:
    assert verdicts(HaltSeen(41.0, "daily-loss-limit", automatic=True)) == [
        (True, "1 in 40–42 s"),
        (True, "1 in 0–100 s"),
        (True, "0 in 0–100 s"),
    ]


def test_a_late_halt_another_reason_and_a_person_s_press_are_each_told_apart() -> None:
    assert verdicts(
        HaltSeen(43.0, "daily-loss-limit", automatic=True),
        HaltSeen(50.0, "manual", automatic=False),
    ) == [
        (False, "0 in 40–42 s"),
        (False, "2 in 0–100 s"),
        (False, "1 in 0–100 s"),
    ]
