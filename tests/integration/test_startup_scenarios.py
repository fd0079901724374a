"""The shipped start-up scenarios catch a weakened squall, each for the right reason.

(That the real commands pass them is the scenarios tier's job.) The weakened commands are
the real ones with one protection off (tests/integration/weakened_squall.py): start-up
errors escaping as a traceback, a database URL shown unmasked; and, through the scenario's
own settings, a connect timeout too long to bound a start-up against a silent database.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.database import close_shared_cluster
from harness.invariants import SECRETS_NOT_PRINTED
from harness.result import ScenarioResult
from harness.runner import Options, run_scenario
from harness.scenario import load_file

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "storage"
WEAKENED_SQUALL = Path(__file__).with_name("weakened_squall.py")
PORT_SCENARIOS = sorted(path.name for path in SCENARIOS.glob("port-taken-*.yaml"))


def run_weakened(name: str, weakening: str | None, storage: dict[str, Any]) -> ScenarioResult:
    """``name`` run by squall weakened by ``weakening`` (None: the real one), with its
    storage settings overridden by ``storage``. In a worker process, which ends without
    atexit hooks: its PostgreSQL is stopped here."""
    scenario = load_file(SCENARIOS / name)
    if storage:
        system = scenario.system.model_copy(update={"storage": storage})
        scenario = scenario.model_copy(update={"system": system})
    options = Options()
    if weakening is not None:
        options = Options(launcher=(sys.executable, str(WEAKENED_SQUALL), weakening))
    try:
        return run_scenario(scenario, name, options)
    finally:
        close_shared_cluster()


WEAKENED: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    **{f"unguarded {name}": (name, "unguarded", {}) for name in PORT_SCENARIOS},
    "unguarded database": ("start-unknown-database.yaml", "unguarded", {}),
    "unmasked": ("start-wrong-password.yaml", "unmasked", {}),
    "patient connect": (
        "start-database-not-answering.yaml",
        None,
        {"pool": {"connect_timeout_s": 300}},
    ),
}


@pytest.fixture(scope="module")
def weakened() -> dict[str, ScenarioResult]:
    with ProcessPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(run_weakened, *args) for key, args in WEAKENED.items()}
        return {key: future.result(timeout=300) for key, future in futures.items()}


def failed(result: ScenarioResult) -> dict[str, str]:
    assert result.error is None, result.error
    return {check.description: check.observed for check in result.failed_checks}


def test_there_is_a_port_scenario_for_the_system_and_every_mock() -> None:
    commands = {load_file(SCENARIOS / name).start.label for name in PORT_SCENARIOS}  # type: ignore[union-attr]
    assert commands == {
        "squall system (--port taken)",
        "squall mock broker (--port taken)",
        "squall mock feed (--port taken)",
        "squall mock proxy (--listen taken)",
        "squall mock proxy (--control-port taken)",
    }


@pytest.mark.parametrize("name", PORT_SCENARIOS)
def test_a_port_conflict_escaping_as_a_traceback_is_caught(
    weakened: dict[str, ScenarioResult], name: str
) -> None:
    problems = failed(weakened[f"unguarded {name}"])
    assert problems["it refuses to start, with status 2"].startswith("exited with status 1 ")
    assert "said 'Traceback' 1 time(s)" in problems["no traceback"]
    assert "it names the process holding the port" in problems


def test_a_database_error_escaping_as_a_traceback_is_caught(
    weakened: dict[str, ScenarioResult],
) -> None:
    problems = failed(weakened["unguarded database"])
    assert problems["it refuses to start, with status 2"].startswith("exited with status 1 ")
    assert "no traceback" in problems


def test_a_password_shown_in_the_error_is_caught_and_not_repeated_by_the_report(
    weakened: dict[str, ScenarioResult],
) -> None:
    result = weakened["unmasked"]
    problems = failed(result)
    assert set(problems) == {"it names the server with the password masked", SECRETS_NOT_PRINTED}
    assert problems[SECRETS_NOT_PRINTED] == "the output holds the database password (1 time(s))"
    assert (
        "(withheld: it holds a secret)" in problems["it names the server with the password masked"]
    )
    # The report says what leaked, never the secret itself.
    report = " ".join(check.observed for check in result.checks)
    assert "pw-" not in report


def test_a_start_up_that_waits_on_a_silent_database_is_caught(
    weakened: dict[str, ScenarioResult],
) -> None:
    problems = failed(weakened["patient connect"])
    assert problems["it gives up and exits with status 2 before the deadline"] == (
        "still running after 20 s; stopped"
    )


def test_a_start_up_refuses_virtual_time_before_starting_anything() -> None:
    path = SCENARIOS / "port-taken-broker.yaml"
    result = run_scenario(load_file(path), str(path), Options(clock="virtual"))
    assert result.error is not None
    assert "runs only on real time: it starts a process of its own" in result.error
    assert result.wall_seconds == 0.0
