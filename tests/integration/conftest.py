from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postgres import PostgresCluster, PostgresNotInstalled, postgres_cluster


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
        yield cluster
