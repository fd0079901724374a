"""The faults-under-load scenarios (scenarios/load): each fails against a system with the
protection it tests switched off, for the reason it names; and a load phase repeats from
its seed. (That they pass is the scenarios tier's job.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.result import ScenarioResult
from harness.runner import Options, run_scenario
from harness.scenario import load_file, load_text
from harness.scenario.model import SystemSettings

LOAD = Path(__file__).resolve().parents[2] / "scenarios" / "load"


def run(stem: str, **system: dict[str, Any]) -> ScenarioResult:
    path = LOAD / f"{stem}.yaml"
    loaded = load_file(path)
    if system:
        overrides = loaded.system.model_dump() | system
        loaded = loaded.model_copy(update={"system": SystemSettings(**overrides)})
    return run_scenario(loaded, str(path), Options())


def failed(result: ScenarioResult) -> dict[str, str]:
    return {check.description: check.observed for check in result.failed_checks}


@pytest.mark.parametrize(
    ("stem", "weakened", "check"),
    [
        pytest.param(
            "egw00133-storm-under-load",
            {"client": {"token_cooldown_s": 0}},
            "token requests refused with EGW00133 stay rare",
            id="storm-without-token-cooldown",
        ),
        pytest.param(
            "database-outage-under-load",
            {"storage": {"buffer_capacity": 20}},
            "no write was refused",
            id="outage-with-a-tiny-write-buffer",
        ),
        pytest.param(
            "feed-disconnect-storm-under-dashboard-load",
            {"feed": {"backoff_base_s": 40, "backoff_max_s": 60}},
            "live ticks never stop for 30 s",
            id="disconnects-with-slow-reconnects",
        ),
    ],
)
def test_a_weakened_system_fails_for_the_right_reason(
    stem: str, weakened: dict[str, dict[str, Any]], check: str
) -> None:
    result = run(stem, **weakened)
    assert result.error is None
    assert not result.passed
    assert check in failed(result), failed(result)


# A small crowd through a token expiry: every kind of user, a shape, and the broker's budget
# all in play, in seconds of wall time.
SMALL = """
name: small crowd
seed: 5
duration: 60
needs: [broker, feed, gateway]
timeline:
  - {name: crowd, at: 0, for: 50, load: {users: 30, shape: spike, kinds: [rest, dashboard]}}
  - {name: expiry, at: 20, action: expire-tokens}
"""


def test_a_load_phase_repeats_from_its_seed() -> None:
    first = run_scenario(load_text(SMALL, "small"), "small")
    second = run_scenario(load_text(SMALL, "small"), "small")
    assert first.journal_digest == second.journal_digest
    assert first.timeline is not None
    assert second.timeline is not None
    # The users too: the same requests at the same times with the same outcomes.
    calls = [(c.at, c.operation, c.outcome) for c in first.timeline.system_calls]
    assert calls == [(c.at, c.operation, c.outcome) for c in second.timeline.system_calls]
    assert {c.operation for c in first.timeline.system_calls} == {
        "quote",
        "health",
        "ws-connect",
        "ws-ping",
    }
    other = run_scenario(load_text(SMALL, "small"), "small", Options(seed=6))
    assert other.journal_digest != first.journal_digest
