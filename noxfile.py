"""Squall's test tiers, one session each. ``./scripts/test`` runs the default ones."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = [
    "lint",
    "typecheck",
    "unit",
    "fuzz-ci",
    "integration",
    "scenarios",
    "e2e",
    "load",
]
nox.options.error_on_missing_interpreters = True


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the import contract that keeps system, mocks and harness apart."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def unit(session: nox.Session) -> None:
    """Single modules, no sockets: respx for HTTP, pure logic for the fault model."""
    session.install("-e", ".[test,bench]")  # bench: the cost curves' plot is tested too
    session.run("pytest", "tests/unit", *session.posargs)


def _fuzz(session: nox.Session, profile: str) -> None:
    session.install("-e", ".[fuzz]")
    session.run(
        "pytest",
        "tests/fuzz",
        "-p",
        "no:cacheprovider",
        f"--hypothesis-profile={profile}",
        "--hypothesis-show-statistics",
        *session.posargs,
    )


@nox.session
def fuzz(session: nox.Session) -> None:
    """Hypothesis at 10,000 examples per input surface (tests/fuzz/conftest.py: ``full``):
    scenario YAML, the gateway's REST and WebSocket, the mock brokers, feeds and control
    planes, and the system's parsers of broker frames."""
    _fuzz(session, "full")


@nox.session(name="fuzz-ci")
def fuzz_ci(session: nox.Session) -> None:
    """The same fuzz tests at 300 examples each, derandomized: the CI's share."""
    _fuzz(session, "ci")


@nox.session
def integration(session: nox.Session) -> None:
    """Real sockets, real mock servers, nginx and a throwaway PostgreSQL."""
    # curl runs the README's walk-through; nginx runs deploy/nginx.conf in front of the
    # gateway; PostgreSQL's server binaries give harness/postgres.py its clusters, and
    # redis-server harness/redis_server.py the Redis that gateways share signals through.
    session.run(
        "./scripts/system-deps", "curl", "nginx", "postgresql-15", "redis-server", external=True
    )
    session.install("-e", ".[test]")
    # Two workers, a module each at a time (its module fixtures run once): the real-time
    # verdict comparisons spend minutes waiting on the wall clock while the other worker
    # runs everything else. `-- -n 0` runs them in one process.
    session.run("pytest", "tests/integration", "-n", "2", "--dist", "loadscope", *session.posargs)


@nox.session
def scenarios(session: nox.Session) -> None:
    """Every scenario under scenarios/, through the pytest plugin; HTML and JUnit in build/."""
    # PostgreSQL for the storage scenarios, Redis for the gateway's fan-out scenario.
    session.run("./scripts/system-deps", "postgresql-15", "redis-server", external=True)
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "scenarios",
        "-p",
        "no:cacheprovider",
        "--squall-html",
        "build/reports/scenarios.html",
        "--junitxml",
        "build/reports/scenarios.xml",
        *session.posargs,
    )


@nox.session
def e2e(session: nox.Session) -> None:
    """The dashboard in the Debian Chromium while the mocks break the feed and the gateway
    restarts; screenshots and traces of failing tests in build/e2e."""
    # Playwright cannot download its own browser here: use (and, as root, install) Debian's.
    session.run("./scripts/system-deps", "chromium", external=True)
    session.install("-e", ".[test,e2e]")
    session.run(
        "pytest",
        "e2e",
        "-p",
        "no:cacheprovider",
        "--browser",
        "chromium",
        "--screenshot",
        "only-on-failure",
        "--tracing",
        "retain-on-failure",
        "--output",
        "build/e2e",
        *session.posargs,
    )


@nox.session
def load(session: nox.Session) -> None:
    """A short, bounded Locust run against a local stack (``squall up``), in one process
    and then distributed over two workers; fails on the thresholds (load/thresholds.py).
    ``-- --users 50 --duration 60 --shape spike`` sizes it; reports in build/load/."""
    session.install("-e", ".[test,load]")
    # First that the thresholds fail a run that should fail (tests/load), then the run.
    session.run("pytest", "tests/load", "-p", "no:cacheprovider")
    session.run("python", "-m", "load.local", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: every broker scenario against the system, then the HTML report."""
    session.install("-e", ".")
    session.run("squall", "demo", *session.posargs)


@nox.session
def realtime(session: nox.Session) -> None:
    """Every broker and storage scenario on the wall clock, compared with virtual time
    (~17 minutes)."""
    session.run("./scripts/system-deps", "postgresql-15", external=True)  # storage scenarios
    session.install("-e", ".[test]")
    session.env["SQUALL_REALTIME_ALL"] = "1"
    session.run(
        "pytest",
        "tests/integration/test_broker_scenarios.py",
        "tests/integration/test_storage_scenarios.py",
        "-k",
        "real_time",
        *session.posargs,
    )


@nox.session
def reliability(session: nox.Session) -> None:
    """The reliability report (harness/reliability): the named reliability scenarios, one
    table in build/reliability/; fails when a scenario fails or anything is lost,
    duplicated or left unknown. ``-- --readme`` also writes the table into README.md."""
    session.run("./scripts/system-deps", "postgresql-15", external=True)  # storage scenarios
    session.install("-e", ".")
    session.run("python", "-m", "harness.reliability", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Time compression, budget use, tick latency, gateway fan-out and the TCP fault proxy's
    added latency and throughput, each beside a baseline measured in the same run
    (``-- --only realtime`` or ``-- --only proxy`` runs that part alone)."""
    # socat is the proxy's baseline; as root with apt-get it is installed when missing.
    session.run("./scripts/system-deps", "socat", external=True)
    session.install("-e", ".[bench]")
    session.run("python", "-m", "harness.bench", *session.posargs)
