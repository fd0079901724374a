from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.postgres import PostgresCluster, PostgresNotInstalled, postgres_cluster
from harness.result import ScenarioResult

# Passwords no message or log may show: a made-up one, in the URLs of servers that never see
# it, and the session server's real one (the ``postgres`` fixture adds it). Test modules
# import these, as ``from tests.integration.conftest import ...``.
PASSWORD = "pA55-NEVER-PRINT"
SECRETS = {PASSWORD}

# Fast reactions for the storage tests' pools: short timeouts, backoff and windows.
FAST_POOL: dict[str, Any] = {
    "max_size": 4,
    "connect_timeout_s": 2.0,
    "acquire_timeout_s": 2.0,
    "query_timeout_s": 2.0,
    "probe_timeout_s": 0.5,
    "reconnect_backoff_base_s": 0.05,
    "reconnect_backoff_max_s": 0.3,
    "error_window_s": 0.5,
    "close_timeout_s": 2.0,
}


def shows_a_secret(text: str) -> bool:
    return any(secret in text for secret in SECRETS)


async def eventually(
    check: Callable[[], bool], *, within: float, what: str, poll: float = 0.02
) -> float:
    """Wait until ``check()``; returns how long it took (real time)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(poll)
    return loop.time() - start


@pytest.fixture(scope="session")
def squall_exe() -> str:
    """The installed ``squall`` console script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / "squall"
    found = str(beside) if beside.exists() else shutil.which("squall")
    if found is None:
        pytest.fail("the `squall` command is not installed; run `pip install -e .` first")
    return found


@pytest.fixture
def system_env() -> dict[str, str]:
    """The variables `squall system` needs, pointing at nothing (port 9): enough to start
    it up to whatever a test wants to see it refuse. The appsecret is fake and must never
    appear in any output."""
    return {
        "SQUALL_KIS_BASE_URL": "http://127.0.0.1:9",
        "SQUALL_KIS_APPKEY": "P" * 36,
        "SQUALL_KIS_APPSECRET": "s" * 180,
        "SQUALL_KIS_ACCOUNT": "50012345-01",
        "SQUALL_FEED_URL": "ws://127.0.0.1:9/tryitout",
    }


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A running PostgreSQL for the session: a throwaway cluster from the machine's binaries,
    or the existing server ``DATABASE_URL`` names. Fails (never skips) without binaries."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(postgres_cluster())
        except PostgresNotInstalled as exc:
            pytest.fail(str(exc), pytrace=False)
        if cluster.password:
            SECRETS.add(cluster.password)
        yield cluster


@pytest.fixture
def database(postgres: PostgresCluster) -> Iterator[str]:
    """A fresh database on the session's server, dropped afterwards; its URL straight to
    the server (with the server's password)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    yield url
    if postgres.running:
        postgres.drop_database(name)


def assert_real_time_agrees(
    virtual_runs: dict[Path, ScenarioResult], tmp_path: Path, squall_exe: str, timeout: float
) -> None:
    """Runs each scenario file of ``virtual_runs`` on real time with the ``squall`` command
    (all at once, each in its own process) and asserts every verdict matches its virtual run.

    Run the virtual ones first: they keep a CPU busy, and real-time runs beside them would
    see their requests arrive late (jitter a quiet machine doesn't have)."""
    runs = {
        path: subprocess.Popen(
            [
                squall_exe,
                "run",
                str(path),
                "--clock",
                "real",
                # The virtual runs compared are the first broker's (KIS): a scenario for both
                # brokers would otherwise double its real time here.
                "--broker",
                "kis",
                "--report-json",
                str(tmp_path / f"{path.stem}.json"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for path in virtual_runs
    }
    for path, process in runs.items():
        _, stderr = process.communicate(timeout=timeout)
        assert process.returncode in (0, 1), stderr.decode()
        real = json.loads((tmp_path / f"{path.stem}.json").read_text())["scenarios"][0]
        virtual = virtual_runs[path]
        assert virtual.error is None, virtual.error
        verdicts = {e["description"]: e["passed"] for e in real["expectations"]}
        real_failed = [e for e in real["expectations"] if not e["passed"]]
        assert real["passed"] == virtual.passed, (path.stem, real_failed, virtual.failed_checks)
        assert verdicts == {c.description: c.passed for c in virtual.checks}, path.stem
