"""The shipped broker scenarios: they catch a broken client, repeat exactly, and give the same
verdicts on virtual and real time.

Each broken variant switches one protection off through the system's settings, the only
way a scenario can reach the system, and must fail on the check that protection exists for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.result import ScenarioResult
from harness.runner import Options, run_scenario
from harness.scenario import Scenario, load_file
from harness.scenario.model import SystemSettings
from mocks.broker.config import Api
from tests.integration.conftest import assert_real_time_agrees

BROKER = Path(__file__).resolve().parents[2] / "scenarios" / "broker"


def scenario(stem: str) -> Scenario:
    return load_file(BROKER / f"{stem}.yaml")


def run(
    stem: str,
    *,
    client: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    broker: Api | None = None,
) -> ScenarioResult:
    loaded = scenario(stem)
    if client or service:
        loaded = loaded.model_copy(
            update={"system": SystemSettings(client=client or {}, service=service or {})}
        )
    return run_scenario(loaded, str(BROKER / f"{stem}.yaml"), Options(broker=broker))


def failed(result: ScenarioResult) -> dict[str, str]:
    return {check.description: check.observed for check in result.failed_checks}


# Every scenario against every broker it lists: the same file, parametrised, not copied.
RUNS = [
    pytest.param(path.stem, api, id=f"{path.stem}[{api}]")
    for path in sorted(BROKER.glob("*.yaml"))
    for api in load_file(path).brokers
]


@pytest.mark.parametrize(("stem", "broker"), RUNS)
def test_the_system_passes(stem: str, broker: Api) -> None:
    result = run(stem, broker=broker)
    assert result.error is None
    assert result.passed, failed(result)


BROKEN = [
    pytest.param(
        "egw00133-storm",
        {"token_cooldown_s": 0},
        {},
        "token requests refused with EGW00133 stay rare",
        id="storm-without-token-cooldown",
    ),
    pytest.param(
        "token-expiry-mid-session",
        {"token_renew_before_s": 0},
        {},
        "the token was renewed before it expired",
        id="expiry-without-early-renewal",
    ),
    pytest.param(
        "hanging-broker",
        {"timeout_s": 1000},
        {},
        "no call is left hanging at the end",
        id="hang-without-timeout",
    ),
    pytest.param(
        "5xx-burst",
        {"read_retries": 0},
        {"quote_deadline_s": 0},
        "every quote is served despite the burst",
        id="5xx-without-retries",
    ),
    pytest.param(
        "egw00201-budget-squeeze",
        {"requests_per_second": 30},
        {},
        "the broker never answers EGW00201",
        id="squeeze-over-budget",
    ),
    pytest.param(
        "ambiguous-order-timeout",
        {},
        {"on_unknown_order": "resend"},
        "no order is booked twice for one client order id",
        id="ambiguous-order-blind-retry",
    ),
    pytest.param(
        "ten-minute-mix",
        {},
        {"on_unknown_order": "resend"},
        "every order of unknown outcome is reconciled, in agreement with the broker",
        id="mix-blind-retry",
    ),
]


# The same protections on Kiwoom's wire, and its own: 1700 waited out.
BROKEN_KIWOOM = [
    pytest.param(
        "hanging-broker",
        {"timeout_s": 1000},
        {},
        "no call is left hanging at the end",
        id="kiwoom-hang-without-timeout",
    ),
    pytest.param(
        "token-expiry-mid-session",
        {"token_renew_before_s": 0},
        {},
        "the token was renewed before it expired",
        id="kiwoom-expiry-without-early-renewal",
    ),
    pytest.param(
        "ambiguous-order-timeout",
        {},
        {"on_unknown_order": "resend"},
        "no order is booked twice for one client order id",
        id="kiwoom-ambiguous-order-blind-retry",
    ),
    pytest.param(
        "5xx-burst",
        {"read_retries": 0},
        {"quote_deadline_s": 0},
        "every quote is served despite the burst",
        id="kiwoom-5xx-without-retries",
    ),
    pytest.param(
        "kiwoom-token-expiry-storm",
        {"token_cooldown_s": 60},
        {},
        "no quote waits for a token much longer than the crowd's turn",
        id="kiwoom-expiry-storm-with-a-minute-cooldown",
    ),
    pytest.param(
        "kiwoom-1700-storm",
        {"rate_limit_retries": 0},
        {"quote_deadline_s": 0},
        "every quote is served, later rather than refused",
        id="kiwoom-1700-without-retries",
    ),
]


@pytest.mark.parametrize(
    ("stem", "client", "service", "check", "broker"),
    [pytest.param(*p.values, "kis", id=p.id) for p in BROKEN]
    + [pytest.param(*p.values, "kiwoom", id=p.id) for p in BROKEN_KIWOOM],
)
def test_a_broken_client_fails_for_the_right_reason(
    stem: str, client: dict[str, Any], service: dict[str, Any], check: str, broker: Api
) -> None:
    result = run(stem, client=client, service=service, broker=broker)
    assert result.error is None
    assert not result.passed
    assert check in failed(result), failed(result)


@pytest.mark.parametrize("stem", ["egw00133-storm", "ten-minute-mix"])
def test_the_same_seed_gives_the_same_journal(stem: str) -> None:
    first = run(stem)
    second = run(stem)
    assert first.journal_digest == second.journal_digest
    other = run_scenario(scenario(stem), stem, Options(seed=first.seed + 1))
    assert other.journal_digest != first.journal_digest  # the digest does see the world


# Real time takes each scenario's full length, so by default only the short ones (three
# minutes each) run here, side by side in their own processes. `nox -s realtime` sets
# SQUALL_REALTIME_ALL=1 to compare every broker scenario (fifteen minutes).
SHORT = [
    "egw00133-storm",
    "hanging-broker",
    "5xx-burst",
    "egw00201-budget-squeeze",
    "ambiguous-order-timeout",
]


def test_real_time_gives_the_same_verdicts(tmp_path: Path, squall_exe: str) -> None:
    every = sorted(p.stem for p in BROKER.glob("*.yaml"))
    compare_clocks(every if os.environ.get("SQUALL_REALTIME_ALL") else SHORT, tmp_path, squall_exe)


def compare_clocks(stems: list[str], tmp_path: Path, squall_exe: str) -> None:
    virtual_runs = {BROKER / f"{stem}.yaml": run(stem) for stem in stems}
    assert_real_time_agrees(virtual_runs, tmp_path, squall_exe, timeout=1200)
