"""The ``squall`` command as a user runs it: a real process, a real port, real signals.

``squall mock broker`` serves and stops; ``squall validate`` and ``squall run`` judge scenario
files, reporting each problem as ``path:line:column: message`` on stderr.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def start_broker(squall: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [squall, "mock", "broker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise AssertionError(f"no URL printed; stderr: {process.communicate()[1]}")
    return process, url


def test_prints_its_url_serves_and_stops_cleanly_on_ctrl_c(squall_exe: str) -> None:
    process, url = start_broker(squall_exe, "--port", "0", "--seed", "3")
    try:
        health = httpx.get(f"{url}/_squall/health", timeout=5)
        assert health.json()["mock"] == "broker"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "stopped" in stderr


def test_a_taken_port_exits_2_with_advice(squall_exe: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [squall_exe, "mock", "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 20


def test_bad_settings_exit_2(squall_exe: str) -> None:
    result = subprocess.run(
        [squall_exe, "mock", "broker", "--port", "0", "--gateway-status", "42"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "gateway_error_status" in result.stderr


# --- squall validate / run on scenario files -----------------------------------------------

GOOD_SCENARIO = "name: good one\nduration: 10\n"
BAD_SCENARIO = "name: bad one\nduration: 10\nbogus: 1\n"
BAD_SCENARIO_TOO = "name: also bad\nduration: 10\nseed: '3'\n"


def squall(squall_exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [squall_exe, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_validate_prints_an_ok_line_for_a_valid_file_and_exits_0(
    squall_exe: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_SCENARIO, encoding="utf-8")
    result = squall(squall_exe, "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"ok  {good}  (good one)"]
    assert result.stderr == ""


def test_validate_reports_a_malformed_file_as_path_line_column_on_stderr_and_exits_2(
    squall_exe: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCENARIO, encoding="utf-8")
    result = squall(squall_exe, "validate", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:3:1: bogus: unknown key 'bogus'; valid keys here: ")
    assert "1 invalid scenario file(s)" in lines[-1]
    assert "Traceback" not in result.stderr


def test_validate_reports_a_yaml_syntax_error_with_its_position(
    squall_exe: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\n  duration: 10\n", encoding="utf-8")
    result = squall(squall_exe, "validate", str(broken))
    assert result.returncode == 2
    assert f"{broken}:2:11: YAML syntax error: mapping values are not allowed here" in (
        result.stderr.splitlines()
    )


def test_validate_of_a_directory_reports_each_file_and_exits_2(
    squall_exe: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    bad = tmp_path / "nested" / "bad.yml"
    bad.parent.mkdir()
    good.write_text(GOOD_SCENARIO, encoding="utf-8")
    bad.write_text(BAD_SCENARIO, encoding="utf-8")
    result = squall(squall_exe, "validate", str(tmp_path))
    assert result.returncode == 2
    assert f"{bad}:3:1: bogus: unknown key 'bogus'" in result.stderr
    assert str(good) not in result.stderr
    assert result.stdout.splitlines() == [f"ok  {good}  (good one)"]
    assert "1 invalid scenario file(s) of 2 checked" in result.stderr


def test_validate_reports_every_bad_file_of_a_directory(squall_exe: str, tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text(BAD_SCENARIO, encoding="utf-8")
    second.write_text(BAD_SCENARIO_TOO, encoding="utf-8")
    (tmp_path / "good.yaml").write_text(GOOD_SCENARIO, encoding="utf-8")
    result = squall(squall_exe, "validate", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{first}:3:1: bogus: unknown key 'bogus'")
    assert lines[1].startswith(f"{second}:3:7: seed: ")
    assert "write numbers without quotes" in lines[1]
    assert "2 invalid scenario file(s)" in lines[2]


def test_run_on_a_malformed_file_exits_2_and_runs_nothing(squall_exe: str, tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD_SCENARIO, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCENARIO, encoding="utf-8")
    report = tmp_path / "report.json"
    result = squall(squall_exe, "run", str(tmp_path), "--report-json", str(report))
    assert result.returncode == 2
    assert f"{bad}:3:1: bogus: unknown key 'bogus'" in result.stderr
    assert "nothing was run" in result.stderr
    # Not even the valid scenario beside it ran: no progress, no verdicts, no report.
    assert result.stdout == ""
    assert not report.exists()
