"""``squall mock broker`` as a user runs it: a real process, a real port, real signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

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
