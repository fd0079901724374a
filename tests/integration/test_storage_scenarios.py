"""The shipped storage scenarios catch a weakened system, each for the right reason.

(That the real system passes them is the scenarios tier's job: ``nox -s scenarios`` runs
every file under scenarios/.) Each weakened variant switches one protection off through the
system's settings, as a scenario can: a write buffer too small to ride out the outage, a
pool that lets callers wait half a minute for a connection, queries without a timeout,
writes that commit record by record instead of one transaction per batch. They run on
virtual time, as the files say, with every wait on PostgreSQL in the realtime guard, so the
windows of real time (a slow network the system waits on) add up: they run in parallel
processes. The wall clock gives the same verdicts (``test_real_time_gives_the_same_verdicts``).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.database import close_shared_cluster
from harness.result import ScenarioResult
from harness.runner import Options, run_scenario
from harness.scenario import load_file
from harness.stored import GROUPS_NOT_HALF_WRITTEN
from tests.integration.conftest import assert_real_time_agrees

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "storage"


def run_weakened(name: str, storage: dict[str, Any]) -> ScenarioResult:
    """``name`` with the system's storage settings overridden by ``storage``.

    Runs in a worker process, which exits without atexit hooks: its PostgreSQL is stopped
    here, or it would outlive the test run."""
    scenario = load_file(SCENARIOS / name)
    merged = {**scenario.system.storage, **storage}
    if "pool" in storage:
        merged["pool"] = {**scenario.system.storage.get("pool", {}), **storage["pool"]}
    system = scenario.system.model_copy(update={"storage": merged})
    try:
        return run_scenario(scenario.model_copy(update={"system": system}), name)
    finally:
        close_shared_cluster()


WEAKENED = {
    "small-buffer": ("database-outage.yaml", {"buffer_capacity": 20}),
    "patient-pool": ("pool-exhaustion.yaml", {"pool": {"acquire_timeout_s": 30}}),
    "no-transactions": ("cut-mid-transaction.yaml", {"transactional": False}),
    "no-query-timeout": ("slow-queries.yaml", {"pool": {"query_timeout_s": 30}}),
}


@pytest.fixture(scope="module")
def weakened() -> dict[str, ScenarioResult]:
    with ProcessPoolExecutor(max_workers=len(WEAKENED)) as pool:
        futures = {key: pool.submit(run_weakened, *args) for key, args in WEAKENED.items()}
        return {key: future.result(timeout=300) for key, future in futures.items()}


def failed(result: ScenarioResult) -> dict[str, str]:
    assert result.error is None, result.error
    return {check.description: check.observed for check in result.failed_checks}


def test_a_buffer_too_small_for_the_outage_is_caught(weakened: dict[str, ScenarioResult]) -> None:
    problems = failed(weakened["small-buffer"])
    assert "no write was refused" in problems
    # Orders the storage refused were not sent: trading stopped with it.
    assert "trading went on through the outage" in problems


def test_a_pool_that_lets_callers_wait_is_caught(weakened: dict[str, ScenarioResult]) -> None:
    problems = failed(weakened["patient-pool"])
    assert "every answer comes within the acquire timeout plus one slow query" in problems
    assert "the rest are told when to come back" in problems


def test_queries_without_a_timeout_are_caught_keeping_callers_waiting(
    weakened: dict[str, ScenarioResult],
) -> None:
    problems = failed(weakened["no-query-timeout"])
    assert "no answer takes longer than the acquire timeout plus the query timeout" in problems


def test_writes_outside_a_transaction_are_caught_half_written(
    weakened: dict[str, ScenarioResult],
) -> None:
    problems = failed(weakened["no-transactions"])
    assert GROUPS_NOT_HALF_WRITTEN in problems
    assert "half-written order group(s)" in problems[GROUPS_NOT_HALF_WRITTEN]


# The scenarios that play a timeline; the start-up ones (a ``start:`` key) run a process of
# their own, on real time only.
TIMELINES = ["cut-mid-transaction", "database-outage", "pool-exhaustion", "slow-queries"]
# By default only the two lightest are compared with the wall clock (a minute, side by
# side); `nox -s realtime` sets SQUALL_REALTIME_ALL=1 to compare all four.
SHORT = ["database-outage", "slow-queries"]


def test_the_timeline_scenarios_run_on_virtual_time() -> None:
    played = {
        path.stem
        for path in SCENARIOS.glob("*.yaml")
        if load_file(path).start is None and load_file(path).clock == "virtual"
    }
    assert played == set(TIMELINES)


def run_on_virtual_time(stem: str) -> ScenarioResult:
    """In a worker process (see ``run_weakened``)."""
    try:
        path = SCENARIOS / f"{stem}.yaml"
        return run_scenario(load_file(path), str(path), Options(clock="virtual"))
    finally:
        close_shared_cluster()


def test_real_time_gives_the_same_verdicts(tmp_path: Path, squall_exe: str) -> None:
    stems = TIMELINES if os.environ.get("SQUALL_REALTIME_ALL") else SHORT
    # Virtual runs first: in real-time steps they wait on the database as the wall clock
    # does, and real-time runs beside them would share the CPU with their fast stretches.
    with ProcessPoolExecutor(max_workers=len(stems)) as pool:
        futures = {stem: pool.submit(run_on_virtual_time, stem) for stem in stems}
        virtual_runs = {
            SCENARIOS / f"{stem}.yaml": future.result(timeout=300)
            for stem, future in futures.items()
        }
    assert_real_time_agrees(virtual_runs, tmp_path, squall_exe, timeout=600)
