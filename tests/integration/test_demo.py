"""The main job as a user runs it: ``squall demo`` runs the broker scenarios and writes the
HTML report, printing its path."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.scenario import load_file

BROKER = Path(__file__).resolve().parents[2] / "scenarios" / "broker"


def test_demo_runs_the_broker_scenarios_and_writes_the_report(
    squall_exe: str, tmp_path: Path
) -> None:
    report = tmp_path / "demo.html"
    result = subprocess.run(
        [squall_exe, "demo", "--html", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # One run per scenario and broker it lists.
    runs = sum(len(load_file(path).brokers) for path in BROKER.glob("*.yaml"))
    assert runs > len(list(BROKER.glob("*.yaml")))  # some run on Kiwoom too
    assert f"{runs} passed, 0 failed" in result.stdout
    assert f"wrote {report}" in result.stdout
    page = report.read_text(encoding="utf-8")
    assert "EGW00133 storm" in page
    assert "token expiry mid-session [kiwoom]" in page
    assert "<svg" in page
