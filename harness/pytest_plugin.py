"""Squall's pytest plugin: scenario files as test items, and fixtures for hand-written tests.

It is registered through the ``pytest11`` entry point, so installing Squall is enough.

Scenarios
    ``pytest scenarios/`` (or one file) collects every ``*.yaml``/``*.yml`` below a directory
    named ``scenarios`` as one test item named after the scenario's ``name``; YAML anywhere
    else (CI configs, docker-compose files) is never collected. Each item runs the scenario
    with the same runner ``squall run`` uses. A failure lists the failed checks with what was
    observed, the seed and clock to reproduce it, and no Python traceback; a file that is not
    a valid scenario fails with the loader's ``file:line:column: message`` lines.

    Every item carries the ``scenario`` marker, and each tag as a keyword and as a marker:
    ``-k tokens``, ``-m tokens``, ``-m "not scenario"``. Tags named like a pytest marker with a
    behaviour of its own (``skip``, ``xfail``, ...) stay keywords only.

    Options: ``--squall-seed N`` and ``--squall-clock virtual|real`` override every
    scenario's own; ``--squall-html PATH`` writes one HTML report of every scenario run. Each
    item's ``ScenarioResult`` is ``item.squall_result``, and its seed, journal digest and
    simulated seconds are ``user_properties``, so ``--junitxml`` carries them.

Fixtures
    ``mock_broker`` (async): a fresh mock KIS broker on a free loopback port, served in the
    test's event loop and torn down after the test. It yields a ``MockBroker`` with ``url``
    (the base URL for the client under test), ``control`` (a ``BrokerControl`` on its
    control plane: faults, journal, token expiry) and ``config``. Its settings come from the
    ``squall_broker_config`` fixture (override it in a conftest or test module to return
    another ``BrokerConfig``) or, for one test, from indirect parametrization::

        @pytest.mark.parametrize("mock_broker", [BrokerConfig(profile="paper")], indirect=True)
        async def test_paper_budget(mock_broker: MockBroker) -> None: ...

    ``stack`` (plain): a function that opens a scenario's whole stack (the broker and the
    system, as ``squall run`` starts them) as an async context manager, inside the test::

        async def test_storm_parts(stack: StackOpener) -> None:
            async with stack("scenarios/broker/egw00133-storm.yaml") as parts:
                await parts.broker.expire_tokens()
                await parts.service.quote("005930")

    It takes a ``Scenario`` or a path (relative paths are read from pytest's rootdir) and an
    optional ``seed`` (default: the scenario's own).

Clocks
    The fixtures run on real time unless the test is marked ``@pytest.mark.looptime``. A
    function-scoped async fixture runs on the very loop its test runs on, but looptime only
    compresses time while the test body runs: a server started in a fixture would read real
    monotonic time while starting and virtual time (from 0) during the test, and its clock
    would go backwards. So ``mock_broker`` turns virtual time on for its own set-up and
    teardown when its test is marked ``looptime``, keeping the broker and the test on one
    clock. Other async fixtures that run between it and the test stay on real time, as
    looptime intends; that delays the server's housekeeping timer but changes no broker rule.
    ``stack`` needs no such care: it is entered inside the test body, on the test's clock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover
    # Without it no async fixture can run anyway, but the scenario items need no asyncio
    # plugin: a missing one must not break every pytest run where Squall is installed.
    _async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr
    from _pytest.terminal import TerminalReporter

    from harness.result import ScenarioResult
    from harness.scenario import Scenario, ScenarioError
    from harness.stack import Stack
    from mocks.broker import BrokerConfig
    from mocks.broker.config import Api
    from mocks.control_client import BrokerControl

# Markers with a behaviour of their own: a tag with one of these names must not skip,
# parametrize or re-clock a scenario, so it stays a keyword only.
_RESERVED_MARKERS = frozenset(
    {
        "asyncio",
        "filterwarnings",
        "looptime",
        "parametrize",
        "scenario",
        "skip",
        "skipif",
        "tryfirst",
        "trylast",
        "usefixtures",
        "xfail",
    }
)
_RESULTS = pytest.StashKey[list["ScenarioResult"]]()
_HTML_WRITTEN = pytest.StashKey[Path]()
# Report file lines that hold a secret of a run: "path:line: holds <kind>".
_LEAKS = pytest.StashKey[list[str]]()


# --- options and configuration -----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("squall", "Squall scenarios")
    group.addoption(
        "--squall-seed",
        type=int,
        default=None,
        metavar="N",
        help="Run every scenario with this seed instead of its own.",
    )
    group.addoption(
        "--squall-clock",
        choices=("virtual", "real"),
        default=None,
        help="Run every scenario on this clock instead of its own.",
    )
    group.addoption(
        "--squall-html",
        default=None,
        metavar="PATH",
        help="Write one HTML report of every scenario run to PATH.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario: a test item collected from a Squall scenario file (*.yaml)"
    )
    config.stash[_RESULTS] = []


# --- collection --------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix in (".yaml", ".yml") and _in_scenarios_dir(file_path, parent.config):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _in_scenarios_dir(path: Path, config: pytest.Config) -> bool:
    # Only directories below the rootdir count: a checkout that happens to live under
    # ~/scenarios/ must not turn its CI configs into scenarios.
    try:
        folders = path.relative_to(config.rootpath).parts[:-1]
    except ValueError:
        folders = path.parts[:-1]
    return "scenarios" in folders


def _shown(path: Path, config: pytest.Config) -> str:
    """``path`` as reports and loader errors show it: relative to the rootdir when inside."""
    try:
        return str(path.relative_to(config.rootpath))
    except ValueError:
        return str(path)


class ScenarioFile(pytest.File):
    """One scenario file; it yields one item per broker it runs against (``name[kiwoom]``
    when there are several), and one item even when the file is not a valid scenario."""

    def collect(self) -> Iterator[ScenarioItem]:
        from harness.scenario import ScenarioError, load_file

        try:
            scenario = load_file(_shown(self.path, self.config))
        except ScenarioError as exc:
            # An item that fails, rather than a collection error: a collection error stops
            # the whole session, and one broken file must not keep the others from running.
            yield ScenarioItem.from_parent(self, name=self.path.stem, scenario=None, problem=exc)
            return
        for api in scenario.brokers:
            name = f"{scenario.name}[{api}]" if len(scenario.brokers) > 1 else scenario.name
            yield ScenarioItem.from_parent(
                self, name=name, scenario=scenario, problem=None, broker=api
            )


class ScenarioFailed(Exception):
    """A scenario ran and a check failed, or the run itself broke (``result.error``)."""

    def __init__(self, result: ScenarioResult) -> None:
        self.result = result
        super().__init__(f"scenario {result.name!r} failed")


class ScenarioItem(pytest.Item):
    """One scenario, run by ``harness.runner.run_scenario`` in a loop of its own."""

    def __init__(
        self,
        *,
        scenario: Scenario | None,
        problem: ScenarioError | None,
        broker: Api | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.problem = problem
        self.broker = broker
        self.squall_result: ScenarioResult | None = None
        self.add_marker("scenario")
        tags = scenario.tags if scenario is not None else []
        self.extra_keyword_matches.update(tags)
        for tag in tags:
            if tag in _RESERVED_MARKERS:
                continue
            # Registered before use, so --strict-markers accepts it and no
            # PytestUnknownMarkWarning is raised for a tag nobody declared.
            if tag not in _registered_markers(self.config):
                self.config.addinivalue_line("markers", f"{tag}: scenarios tagged {tag!r}")
            self.add_marker(tag)

    def runtest(self) -> None:
        from harness.result import ScenarioResult
        from harness.runner import Options, run_scenario

        shown = _shown(self.path, self.config)
        if self.problem is not None:
            # Still a result, so the HTML report lists the broken file instead of hiding it.
            self._record(
                ScenarioResult(
                    name=self.name,
                    path=shown,
                    seed=0,
                    clock="-",
                    passed=False,
                    simulated_seconds=0.0,
                    wall_seconds=0.0,
                    journal_digest="",
                    error=str(self.problem),
                )
            )
            raise self.problem
        assert self.scenario is not None
        options = Options(
            seed=self.config.getoption("squall_seed"),
            clock=self.config.getoption("squall_clock"),
            broker=self.broker,
        )
        result = run_scenario(self.scenario, shown, options)
        self._record(result)
        self.user_properties += [
            ("seed", result.seed),
            ("clock", result.clock),
            ("journal_digest", result.journal_digest),
            ("simulated_seconds", round(result.simulated_seconds, 3)),
        ]
        if result.error is not None or not result.passed:
            raise ScenarioFailed(result)

    def _record(self, result: ScenarioResult) -> None:
        self.squall_result = result
        self.config.stash[_RESULTS].append(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | TerminalRepr:
        from harness.scenario import ScenarioError

        if isinstance(excinfo.value, ScenarioFailed):
            return describe_failure(excinfo.value.result, self.nodeid)
        if isinstance(excinfo.value, ScenarioError):
            return f"not a valid scenario file:\n{excinfo.value}"
        # Anything else is a bug in the harness, where the traceback is what helps.
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario: {self.name}"


def _registered_markers(config: pytest.Config) -> set[str]:
    lines: list[str] = config.getini("markers")
    return {line.split(":")[0].split("(")[0].strip() for line in lines}


def describe_failure(result: ScenarioResult, nodeid: str) -> str:
    """What a failed scenario item shows: the run's facts, then each failed check."""
    from harness.report.common import failure_message

    headline = "the run broke" if result.error is not None else failure_message(result)
    lines = [
        f"scenario {result.name!r}: {headline}",
        f"  file     {result.path}",
        f"  seed     {result.seed}",
        f"  clock    {result.clock}",
        f"  time     {result.simulated_seconds:.1f} s simulated in "
        f"{result.wall_seconds:.2f} s wall",
        f"  journal  {result.journal_digest or '-'}",
        "",
    ]
    if result.error is not None:
        lines += ["error:", *(f"    {line}" for line in result.error.strip().splitlines()), ""]
    for check in result.failed_checks:
        lines.append(f"✗ {check.description}")
        lines.append(f"    observed: {check.observed}")
        if check.where:
            lines.append(f"    at {check.where}")
    lines += ["", f"reproduce: pytest '{nodeid}' --squall-seed {result.seed}"]
    if result.clock in ("virtual", "real"):
        lines[-1] += f" --squall-clock {result.clock}"
    return "\n".join(lines)


# --- reports -----------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)  # after the JUnit XML is written: it is searched too
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the HTML report, then fail the session when a report file holds a secret of a
    run (harness.leaks)."""
    config = session.config
    target: str | None = config.getoption("squall_html")
    if target is not None:
        from harness.report import write_html

        # Relative to where pytest was started, even if a test changed the working directory.
        path = config.invocation_params.dir / target
        write_html(config.stash[_RESULTS], path)
        config.stash[_HTML_WRITTEN] = path
    from harness import leaks

    junit: str | None = config.getoption("xmlpath", None)
    found = leaks.SEEN.leaks_in_files(
        config.invocation_params.dir / name for name in (target, junit) if name
    )
    config.stash[_LEAKS] = found
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    found = config.stash.get(_LEAKS, [])
    if found:
        terminalreporter.write_sep("!", "squall: a report file holds a secret of a run")
        for line in found[:20]:
            terminalreporter.write_line(line)
    written = config.stash.get(_HTML_WRITTEN, None)
    if written is not None:
        count = len(config.stash[_RESULTS])
        terminalreporter.write_sep("-", f"squall: HTML report of {count} scenario(s)")
        terminalreporter.write_line(str(written))


# --- fixtures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MockBroker:
    """A running mock KIS broker, as the ``mock_broker`` fixture yields it."""

    url: str
    control: BrokerControl
    config: BrokerConfig


@pytest.fixture
def squall_broker_config() -> BrokerConfig:
    """The settings ``mock_broker`` serves with; override this fixture to change them."""
    from mocks.broker import BrokerConfig

    return BrokerConfig()


@_async_fixture
async def mock_broker(
    request: pytest.FixtureRequest, squall_broker_config: BrokerConfig
) -> AsyncIterator[MockBroker]:
    """A fresh mock broker on a free loopback port, in the test's loop; see the module doc."""
    from mocks.broker import BrokerConfig, create_app
    from mocks.control_client import BrokerControl
    from mocks.feed import opening_bell
    from mocks.server import serve

    param = getattr(request, "param", None)
    if param is None:
        config = squall_broker_config
    elif isinstance(param, BrokerConfig):
        config = param
    else:  # a mapping of settings, e.g. {"profile": "paper"}
        config = BrokerConfig.model_validate(param)
    # The scenarios' wall clock: 09:00 KST today, so token expiry strings and order times
    # are the same on every run, whatever the hour.
    app = create_app(config, wall_origin=opening_bell())
    parts = contextlib.AsyncExitStack()
    with _on_the_tests_clock(request):
        server = await parts.enter_async_context(serve(app))
        control = await parts.enter_async_context(BrokerControl(server.url))
    try:
        yield MockBroker(server.url, control, config)
    finally:
        with _on_the_tests_clock(request):
            await parts.aclose()


class StackOpener(Protocol):
    """What the ``stack`` fixture is: call it with a scenario or its path, then ``async with``."""

    def __call__(
        self, scenario: Scenario | str | os.PathLike[str], seed: int | None = None
    ) -> contextlib.AbstractAsyncContextManager[Stack]: ...


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> StackOpener:
    """``stack(scenario_or_path, seed=None)``: a scenario's parts, as ``async with`` opens them."""
    from harness import stack as stacks
    from harness.scenario import Scenario, load_file

    def open_stack(
        scenario: Scenario | str | os.PathLike[str], seed: int | None = None
    ) -> contextlib.AbstractAsyncContextManager[Stack]:
        if not isinstance(scenario, Scenario):
            scenario = load_file(request.config.rootpath / scenario)
        return stacks.start(scenario, scenario.seed if seed is None else seed)

    return open_stack


@contextlib.contextmanager
def _on_the_tests_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Virtual time for a fixture's set-up or teardown when its test runs on virtual time."""
    import asyncio

    import looptime

    loop = asyncio.get_running_loop()
    if (
        isinstance(loop, looptime.LoopTimeEventLoop)
        and not loop.looptime_on
        and _wants_looptime(request.node)
    ):
        with loop.looptime_enabled():
            yield
    else:
        yield


def _wants_looptime(node: pytest.Item | pytest.Collector) -> bool:
    """Whether looptime will run this test on virtual time: its marker and its options.

    The same rule looptime's own plugin applies (``--looptime`` turns it on for every
    test, ``--no-looptime`` off for all, ``looptime(False)`` off for one).
    """
    flag: bool | None = node.config.getoption("looptime", None)
    markers = list(node.iter_markers("looptime"))
    enabled = bool((markers or flag is True) and flag is not False)
    for marker in reversed(markers):
        if marker.args:
            enabled = bool(marker.args[0])
    return enabled
