"""The ``squall`` command as a user runs it: a real process, a real port, real signals.

``squall mock broker`` serves and stops; ``squall validate`` and ``squall run`` judge scenario
files, reporting each problem as ``path:line:column: message`` on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets


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


def squall(
    squall_exe: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [squall_exe, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@contextlib.contextmanager
def a_taken_port() -> Iterator[int]:
    """A loopback port this test process listens on while the block runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_taken_port_exits_2_with_advice(squall_exe: str) -> None:
    with a_taken_port() as port:
        started = time.monotonic()
        result = squall(squall_exe, "mock", "broker", "--port", str(port), timeout=30)
    assert result.returncode == 2
    _assert_names_the_conflict(result.stderr, port, "--port", "SQUALL_BROKER_PORT")
    assert time.monotonic() - started < 20


def test_bad_settings_exit_2(squall_exe: str) -> None:
    result = squall(
        squall_exe, "mock", "broker", "--port", "0", "--gateway-status", "42", timeout=30
    )
    assert result.returncode == 2
    assert "gateway_error_status" in result.stderr


# --- squall validate / run on scenario files -----------------------------------------------

GOOD_SCENARIO = "name: good one\nduration: 10\n"
BAD_SCENARIO = "name: bad one\nduration: 10\nbogus: 1\n"
BAD_SCENARIO_TOO = "name: also bad\nduration: 10\nseed: '3'\n"


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


def test_run_with_a_log_it_cannot_write_exits_2_and_runs_nothing(
    squall_exe: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_SCENARIO, encoding="utf-8")
    result = squall(squall_exe, "run", str(good), "--log", str(good / "run.log"))
    assert result.returncode == 2
    assert "cannot write the log to" in result.stderr
    assert "--log" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


TAKEN_PORT_COMMANDS = [
    pytest.param(["mock", "broker"], "--port", "SQUALL_BROKER_PORT", id="mock-broker"),
    pytest.param(["mock", "feed"], "--port", "SQUALL_FEED_PORT", id="mock-feed"),
    pytest.param(
        ["mock", "proxy", "--upstream", "127.0.0.1:9"], "--listen", "SQUALL_PROXY_PORT", id="proxy"
    ),
    pytest.param(
        ["mock", "proxy", "--upstream", "127.0.0.1:9", "--listen", "0"],
        "--control-port",
        "SQUALL_PROXY_CONTROL_PORT",
        id="proxy-control",
    ),
    pytest.param(["up"], "--port", "SQUALL_SYSTEM_PORT", id="up"),
    pytest.param(["up", "--port", "0"], "--broker-port", "SQUALL_BROKER_PORT", id="up-broker"),
    pytest.param(["up", "--port", "0"], "--feed-port", "SQUALL_FEED_PORT", id="up-feed"),
]


def _assert_names_the_conflict(stderr: str, port: int, option: str, envvar: str) -> None:
    """Exit-2 output for a taken port: the port, who holds it, how to pick another."""
    text = " ".join(stderr.split())  # rich wraps long lines
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in text
    # The test process holds the port, and /proc lets the child see it.
    assert f"(pid {os.getpid()}: " in text
    assert f"{option} N or {envvar}=N ({option} 0 picks a free one)" in text
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("command", "option", "envvar"), TAKEN_PORT_COMMANDS)
def test_every_server_command_exits_2_on_a_taken_port(
    squall_exe: str, command: list[str], option: str, envvar: str
) -> None:
    with a_taken_port() as port:
        result = squall(squall_exe, *command, option, str(port), timeout=30)
    assert result.returncode == 2, result.stderr
    _assert_names_the_conflict(result.stderr, port, option, envvar)


@pytest.mark.parametrize(("command", "option", "envvar"), TAKEN_PORT_COMMANDS)
def test_the_port_variable_picks_the_port_too(
    squall_exe: str, command: list[str], option: str, envvar: str
) -> None:
    with a_taken_port() as port:
        result = squall(squall_exe, *command, env={**os.environ, envvar: str(port)}, timeout=30)
    assert result.returncode == 2, result.stderr
    _assert_names_the_conflict(result.stderr, port, option, envvar)


def test_squall_system_on_a_taken_port_names_the_port_and_exits_2(
    squall_exe: str, system_env: dict[str, str]
) -> None:
    with a_taken_port() as port:
        env = {**os.environ, **system_env}
        result = squall(squall_exe, "system", "--port", str(port), env=env, timeout=30)
    assert result.returncode == 2, result.stderr
    _assert_names_the_conflict(result.stderr, port, "--port", "SQUALL_SYSTEM_PORT")
    assert system_env["SQUALL_KIS_APPSECRET"] not in result.stderr + result.stdout


def test_squall_system_without_settings_names_the_variables_and_exits_2(squall_exe: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
    result = squall(squall_exe, "system", "--port", "0", env=env, timeout=30)
    assert result.returncode == 2
    assert "SQUALL_KIS_BASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_squall_up_reads_the_systems_policy_and_refuses_a_bad_one(squall_exe: str) -> None:
    short = "too-short-token"
    env = {**os.environ, "SQUALL_GATEWAY_OPERATOR_TOKEN": short}
    result = squall(squall_exe, "up", "--port", "0", env=env, timeout=30)
    assert result.returncode == 2
    assert "SQUALL_GATEWAY_OPERATOR_TOKEN" in result.stderr
    assert short not in result.stderr  # a secret, even a bad one
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("broker", "played"), [("kis", "KIS"), ("kiwoom", "Kiwoom")])
def test_squall_up_prints_the_urls_and_the_dashboard_gets_live_prices(
    squall_exe: str, broker: str, played: str
) -> None:
    process = subprocess.Popen(
        [squall_exe, "up", "--port", "0", "--seed", "4", "--broker", broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(8)]
        urls = dict(line.rsplit(None, 1) for line in lines if line)  # "name   url"
        assert set(urls) >= {
            "dashboard",
            "health",
            "gateway WebSocket",
            f"mock feed ({played} realtime)",
        }
        feed_path = "/api/dostk/websocket" if broker == "kiwoom" else "/tryitout"
        assert urls[f"mock feed ({played} realtime)"].endswith(feed_path)
        assert urls[f"mock broker ({played} REST)"].startswith("http://127.0.0.1:")
        page = httpx.get(urls["dashboard"], timeout=5)
        assert page.status_code == 200
        assert 'data-testid="connection-state"' in page.text
        price = asyncio.run(first_live_price(urls["gateway WebSocket"]))
        assert price["source"] == "feed"
        assert price["price"] > 0
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


async def first_live_price(ws_url: str) -> dict[str, Any]:
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "ticker": "005930"}))
        async with asyncio.timeout(15):
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "price_update" and message["data"]["source"] == "feed":
                    data: dict[str, Any] = message["data"]
                    return data
    raise AssertionError("the gateway closed before a live price arrived")


def test_run_against_one_broker_runs_the_scenarios_that_list_it(
    squall_exe: str, tmp_path: Path
) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(
        "name: quotes\nduration: 5\nbrokers: [kis, kiwoom]\n"
        "timeline:\n  - {name: q, at: 0, quotes: {rate: 1}}\n"
        "expect:\n  - {success_ratio: {workload: q}, equals: 1}\n",
        encoding="utf-8",
    )
    kis_only = tmp_path / "kis.yaml"
    kis_only.write_text(both.read_text().replace("brokers: [kis, kiwoom]", "brokers: [kis]"))
    report = tmp_path / "r.json"
    run = subprocess.run(
        [squall_exe, "run", str(tmp_path), "--broker", "kiwoom", "--report-json", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    names = [s["name"] for s in json.loads(report.read_text())["scenarios"]]
    assert names == ["quotes [kiwoom]"]
    none = subprocess.run(
        [squall_exe, "run", str(kis_only), "--broker", "kiwoom"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert none.returncode == 2
    assert "none of the 1 scenario(s) runs against kiwoom" in none.stderr
