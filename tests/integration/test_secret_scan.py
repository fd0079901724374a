"""``secrets-not-printed`` over a whole scenario run: a system that logs its access token
fails the scenario, and the finding names the place and the kind, not the token."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from harness import leaks
from harness.cli import run_scenarios
from harness.invariants import SECRETS_NOT_LEAKED
from harness.leaks import Secrets
from harness.runner import Options, run_scenario
from harness.scenario import load_file
from system.broker import token as token_module

STORM = Path(__file__).resolve().parents[2] / "scenarios/broker/egw00133-storm.yaml"


def test_the_storm_keeps_every_secret_out_of_its_logs_journals_and_results() -> None:
    result = run_scenario(load_file(STORM), str(STORM), Options())
    verdicts = {check.description: check for check in result.checks}
    assert verdicts[SECRETS_NOT_LEAKED].passed, verdicts[SECRETS_NOT_LEAKED].observed
    assert "an access token" in verdicts[SECRETS_NOT_LEAKED].observed
    assert "the appsecret" in verdicts[SECRETS_NOT_LEAKED].observed


def test_a_system_that_logs_its_token_fails_for_that_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    get = token_module.TokenManager.get

    async def careless_get(self: token_module.TokenManager) -> str:
        value = await get(self)
        logging.getLogger("system.broker.token").warning("using token %s", value)
        return value

    monkeypatch.setattr(token_module.TokenManager, "get", careless_get)
    result = run_scenario(load_file(STORM), str(STORM), Options())
    failed = {check.description: check.observed for check in result.checks if not check.passed}
    assert list(failed) == [SECRETS_NOT_LEAKED]
    assert failed[SECRETS_NOT_LEAKED].startswith("the log holds an access token (")
    assert not result.passed


TINY = """\
name: tiny-leaky-name-2
duration: 5
timeline:
  - {name: q, at: 0, quotes: {rate: 1}}
"""


def test_squall_run_fails_when_a_file_it_wrote_holds_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The scenario's name stands for a secret that reached the reports.
    seen = Secrets()
    seen.add("a test secret", ["tiny-leaky-name-2"])
    monkeypatch.setattr(leaks, "SEEN", seen)
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    report = tmp_path / "report.json"
    quiet = Console(file=io.StringIO())
    assert not run_scenarios([scenario], report_json=report, console=quiet)
    said = capsys.readouterr().err
    assert f"secret in a report: {report}:" in said
    assert "holds a test secret" in said
    assert "tiny-leaky-name-2" not in said
    # ... and passes when the reports are clean.
    monkeypatch.setattr(leaks, "SEEN", Secrets())
    assert run_scenarios([scenario], report_json=report, console=quiet)
