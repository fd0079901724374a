"""Finding a run's secrets in text and files (harness.leaks), without repeating them."""

from __future__ import annotations

from pathlib import Path

from harness.invariants import SECRETS_NOT_LEAKED, secrets_not_leaked
from harness.leaks import MIN_SECRET_CHARS, Secrets

TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ0b2tlbiJ9.c2lnbmF0dXJl"
PASSWORD = "pw-4fG9kQ2sLx7ZrT1m"


def secrets() -> Secrets:
    found = Secrets()
    found.add("an access token", [TOKEN, None, ""])
    found.add("the database password", [PASSWORD])
    return found


def test_each_secret_is_counted_by_its_kind() -> None:
    text = f"Bearer {TOKEN} then {TOKEN}, and postgresql://u:{PASSWORD}@h"
    assert secrets().found_in(text) == {"an access token": 2, "the database password": 1}
    assert secrets().found_in("nothing secret here") == {}


def test_a_string_too_short_to_be_a_secret_is_not_searched_for() -> None:
    found = Secrets()
    found.add("a short value", ["x" * (MIN_SECRET_CHARS - 1)])
    assert not found
    assert found.found_in("x" * 100) == {}


def test_a_finding_names_the_place_and_the_kind_never_the_value() -> None:
    problems = secrets().leaks({"the log": f"token={TOKEN}", "the journal": "clean"})
    assert problems == ["the log holds an access token (1 time(s))"]
    verdict = secrets_not_leaked(secrets(), {"the log": f"token={TOKEN}"})
    assert not verdict.passed
    assert verdict.description == SECRETS_NOT_LEAKED
    assert TOKEN not in verdict.observed
    assert "access token" in verdict.observed


def test_a_clean_run_passes_and_says_what_was_searched_for() -> None:
    verdict = secrets_not_leaked(secrets(), {"the log": "ok", "the timeline": "ok"})
    assert verdict.passed
    assert verdict.observed == (
        "none of the run's secrets (an access token ×1, the database password ×1) in "
        "the log, the timeline"
    )
    assert PASSWORD not in verdict.observed


def test_files_are_searched_line_by_line(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(f"<p>ok</p>\n<p>{PASSWORD}</p>\n", encoding="utf-8")
    clean = tmp_path / "junit.xml"
    clean.write_text("<testsuite/>", encoding="utf-8")
    found = secrets().leaks_in_files([report, clean])
    assert found == [f"{report}:2: holds the database password"]


def test_secrets_of_several_runs_add_up() -> None:
    seen = Secrets()
    seen.update(secrets())
    other = Secrets()
    other.add("an access token", ["another-token-value-123"])
    seen.update(other)
    assert seen.kinds() == "an access token ×2, the database password ×1"


def test_a_file_that_was_never_written_is_skipped(tmp_path: Path) -> None:
    assert secrets().leaks_in_files([tmp_path / "missing.html"]) == []
