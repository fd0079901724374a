from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def squall_exe() -> str:
    """The installed ``squall`` console script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / "squall"
    found = str(beside) if beside.exists() else shutil.which("squall")
    if found is None:
        pytest.fail("the `squall` command is not installed; run `pip install -e .` first")
    return found
