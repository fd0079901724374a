"""The E2E tier's fixtures: the Debian Chromium for pytest-playwright, and a live stack.

- Playwright drives ``/usr/bin/chromium`` (``executable_path``): ``playwright install``
  cannot download a browser here, and CI needn't. Without it the session stops at once,
  naming the command that installs it.
- Screenshots and traces of failing tests go to ``build/e2e`` (``show-trace`` opens the
  zip) unless the command line asks for something else: ``nox -s e2e`` passes the same
  options explicitly, and a bare ``pytest e2e`` gets them from ``pytest_configure`` below.
- ``live`` is a fresh ``LiveStack`` (world, system, gateway; see ``e2e/live.py``) per test,
  started before the browser's page and stopped after it. A test marked
  ``@pytest.mark.live_stack(trading=..., operator_token=...)`` gets a stack built with
  those keyword arguments (a trading desk, the kill switch's token).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e.live import LiveStack

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = "build/e2e"

# Chromium in a container, as root, with no network but loopback (ENVIRONMENT.md): no
# sandbox, no GPU, no /dev/shm, and none of the browser's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Each fault plays out in a few seconds (e2e/live.py); an assertion waiting longer than this
# is a failure, not a slow machine.
expect.set_options(timeout=10_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "live_stack(**kwargs): build the test's LiveStack with these keyword arguments "
        "(e2e/live.py: trading=, operator_token=, seed=)",
    )
    # pytest-playwright's defaults keep nothing of a failure; a failing E2E test is only
    # debuggable with its trace. Options given on the command line win (except an explicit
    # "off", which is indistinguishable from the default).
    option = config.option
    if getattr(option, "screenshot", None) == "off":
        option.screenshot = "only-on-failure"
    if getattr(option, "tracing", None) == "off":
        option.tracing = "retain-on-failure"
    if getattr(option, "output", None) == "test-results":
        option.output = ARTIFACTS
    # pytest-playwright's stand-in for pytest-base-url (not installed: the tests know their
    # URL) trips a pytest 9 deprecation; it is the plugin's to fix, and harmless here.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        raise pytest.UsageError(
            f"the E2E tests drive the Debian Chromium at {CHROMIUM}, which is missing: "
            "install it with `./scripts/system-deps chromium` (as root; `nox -s e2e` does "
            "this itself), since `playwright install` cannot download a browser here"
        )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# Autouse, so it is set up before pytest-playwright's page and torn down after it: the
# screenshot and the end of the trace, taken when the page closes, then show the page as the
# failing test left it, not reconnecting to a stack that is already gone.
@pytest.fixture(autouse=True)
def live(request: pytest.FixtureRequest) -> Iterator[LiveStack]:
    marker = request.node.get_closest_marker("live_stack")
    stack = LiveStack(**(marker.kwargs if marker is not None else {}))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
