"""Wording shared by every report, so the terminal, JUnit and HTML never disagree."""

from __future__ import annotations

from typing import Literal

from harness.result import ScenarioResult

Verdict = Literal["PASS", "FAIL", "ERROR"]


def verdict(result: ScenarioResult) -> Verdict:
    # A run that broke says nothing about the system, so it is not reported as a failure.
    if result.error is not None:
        return "ERROR"
    return "PASS" if result.passed else "FAIL"


def compression(result: ScenarioResult) -> str:
    """How much faster than real time the run went: ``412×`` on virtual time, ``1.0×`` on real."""
    if result.wall_seconds <= 0 or result.simulated_seconds <= 0:
        return "—"
    ratio = result.simulated_seconds / result.wall_seconds
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def failure_message(result: ScenarioResult) -> str:
    failed = len(result.failed_checks)
    if failed == 0:
        return "the scenario failed without a failing check"
    return f"{failed} of {len(result.checks)} checks failed"


def tally(results: list[ScenarioResult]) -> str:
    """``N passed, M failed``, naming errors separately when there are any."""
    passed = sum(1 for result in results if verdict(result) == "PASS")
    errors = sum(1 for result in results if verdict(result) == "ERROR")
    line = f"{passed} passed, {len(results) - passed} failed"
    if errors:
        line += f" ({errors} with an error)"
    return line
