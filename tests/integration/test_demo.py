"""The main job as a user runs it: ``squall demo`` must pass and say what happened."""

from __future__ import annotations

import subprocess


def test_demo_survives_the_storm(squall_exe: str) -> None:
    result = subprocess.run(
        [squall_exe, "demo", "--requests", "200"],
        capture_output=True,
        text=True,
        timeout=240,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
    assert "token requests seen by the broker" in result.stdout
    assert "200/200" in result.stdout
