"""The scenario language's load phases and Redis: what loads, and the mistakes refused."""

from __future__ import annotations

import textwrap

import pytest

from harness.scenario import ScenarioError, load_text

PATH = "s.yaml"


def message(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_text(textwrap.dedent(text), PATH)
    (problem,) = caught.value.problems
    return f"{problem.line}:{problem.column} {problem.message}"


def test_a_load_phase_loads_with_its_defaults() -> None:
    scenario = load_text(
        textwrap.dedent(
            """\
            name: x
            duration: 60
            needs: [broker, feed, gateway]
            timeline:
              - {name: crowd, at: 0, for: 30, load: {users: 50, shape: spike}}
            expect:
              - latency: {workload: crowd, operation: quote}
                percentile: 95
                at_most: 2
            """
        ),
        PATH,
    )
    phase = scenario.timeline[0].load
    assert phase is not None
    assert (phase.users, phase.shape, phase.kinds, phase.think) == (
        50,
        "spike",
        ["rest"],
        [0.5, 1.5],
    )


def test_a_load_phase_needs_the_gateway() -> None:
    said = message(
        """\
        name: x
        duration: 60
        timeline:
          - {name: crowd, at: 0, load: {users: 5}}
        """
    )
    assert said.endswith("step 'crowd' puts users on the gateway; add gateway to 'needs'")


@pytest.mark.parametrize("think", ["[0, 1]", "[2, 1]", "[1]"])
def test_a_think_range_is_low_then_high_and_positive(think: str) -> None:
    said = message(
        f"""\
        name: x
        duration: 60
        needs: [broker, feed, gateway]
        timeline:
          - {{name: crowd, at: 0, load: {{users: 5, think: {think}}}}}
        """
    )
    assert "think" in said


def test_an_unknown_user_kind_names_the_kinds() -> None:
    said = message(
        """\
        name: x
        duration: 60
        needs: [broker, feed, gateway]
        timeline:
          - {name: crowd, at: 0, load: {users: 5, kinds: [operator]}}
        """
    )
    assert "'rest' or 'dashboard'" in said


def test_redis_needs_the_gateway_and_the_wall_clock() -> None:
    assert message(
        """\
        name: x
        duration: 60
        clock: real
        needs: [broker, redis]
        """
    ).endswith("the gateway shares signals through Redis; add gateway")
    assert message(
        """\
        name: x
        duration: 60
        needs: [broker, feed, gateway, redis]
        """
    ).endswith("set 'clock: real'")


def test_a_redis_fault_takes_no_selection() -> None:
    said = message(
        """\
        name: x
        duration: 60
        clock: real
        needs: [broker, feed, gateway, redis]
        timeline:
          - {at: 5, for: 5, fault: {target: redis, do: {kind: outage}, every: 2}}
        """
    )
    assert "every" in said


def test_a_scenario_cannot_point_the_gateway_at_a_redis() -> None:
    said = message(
        """\
        name: x
        duration: 60
        needs: [broker, feed, gateway]
        system:
          gateway: {redis_url: 'redis://10.0.0.5:6379/0'}
        """
    )
    assert said == (
        "5:13 system.gateway.redis_url: 'redis_url' is set by the stack (add redis to "
        "'needs' for a Redis of its own), not by scenarios"
    )
