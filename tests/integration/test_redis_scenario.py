"""scenarios/gateway/redis-outage.yaml against a gateway whose fan-out never comes back by
itself: the scenario must catch it, for that reason. (That it passes against the system is
the scenarios tier's job.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runner import run_scenario
from harness.scenario import load_file
from system.gateway import fanout

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "gateway" / "redis-outage.yaml"


def test_a_fanout_that_never_reconnects_fails_the_scenario(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "jittered_backoff", lambda *_, **__: 1000.0)
    result = run_scenario(load_file(SCENARIO), str(SCENARIO))
    assert result.error is None
    failed = {check.description: check.observed for check in result.failed_checks}
    assert "shared again by itself once Redis is back" in failed, failed
    assert failed["shared again by itself once Redis is back"].startswith(
        "gateway_fanout_shared = 0"
    )
