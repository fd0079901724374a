"""The ``squall`` command line.

Every server command prints its URL, exits 2 with a guiding message when its port is taken,
and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Coroutine, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from harness.clock import ClockKind

M = TypeVar("M", bound=BaseModel)

if TYPE_CHECKING:
    from harness.scenario import Scenario
    from mocks.broker.config import Api as BrokerApi

app = typer.Typer(
    name="squall",
    help="Squall: a fault-injection test platform for broker-connected trading systems.",
    no_args_is_help=True,
    add_completion=False,
)
mock_app = typer.Typer(help="Run a simulated broker, feed or network part on its own.")
app.add_typer(mock_app, name="mock")

err = Console(stderr=True)


# The interface a server command binds; the same option on every one of them.
Host = Annotated[str, typer.Option(help="Interface to bind; loopback by default.")]


class Profile(StrEnum):
    real = "real"
    paper = "paper"


class Api(StrEnum):
    kis = "kis"
    kiwoom = "kiwoom"


@mock_app.command("broker")
def mock_broker(
    port: Annotated[
        int, typer.Option(help="TCP port; 0 picks a free one.", envvar="SQUALL_BROKER_PORT")
    ] = 8000,
    host: Host = "127.0.0.1",
    api: Annotated[Api, typer.Option(help="Protocol: KIS Open API or Kiwoom REST.")] = Api.kis,
    profile: Annotated[
        Profile, typer.Option(help="Real or paper rules (KIS VTS, Kiwoom mockapi).")
    ] = Profile.real,
    seed: Annotated[int, typer.Option(help="Seed for prices, tokens and faults.")] = 0,
    rps: Annotated[
        int | None,
        typer.Option(help="Per-second budget (default: KIS real 18, Kiwoom real 5, paper 1)."),
    ] = None,
    gateway_status: Annotated[
        int, typer.Option(help="HTTP status of gateway errors (EGW…); KIS clients see 500.")
    ] = 500,
    token_interval: Annotated[
        float, typer.Option(help="Seconds between token issuances (EGW00133).")
    ] = 60.0,
) -> None:
    """Serve a simulated KIS Open API (or Kiwoom REST, with --api kiwoom) until Ctrl-C.

    The control plane is under /_squall on the same port. It answers loopback clients only,
    unless SQUALL_CONTROL_TOKEN is set: then every caller must send that token in the
    x-squall-control-token header.
    """
    from mocks.broker import BrokerConfig, create_app
    from mocks.server import serve

    config = _settings_or_exit(
        BrokerConfig,
        "broker",
        {
            "api": ("--api", api.value),
            "profile": ("--profile", profile.value),
            "seed": ("--seed", seed),
            "requests_per_second": ("--rps", rps),
            "gateway_error_status": ("--gateway-status", gateway_status),
            "token_interval_s": ("--token-interval", token_interval),
        },
    )
    token = _control_token()
    broker = create_app(config, control_token=token)

    async def main() -> None:
        async with serve(broker, host, port) as server:
            await _announce(
                f"Squall mock {'Kiwoom' if api is Api.kiwoom else 'KIS'} broker "
                f"({profile.value} profile, seed {seed}, "
                f"{config.budget} req/s) — {_control_plane(server.url, token)}; Ctrl-C stops it",
                server.url,
            )

    _serve_until_interrupted(main(), {port: ("the mock broker", "--port", "SQUALL_BROKER_PORT")})


@mock_app.command("feed")
def mock_feed(
    port: Annotated[
        int, typer.Option(help="TCP port; 0 picks a free one.", envvar="SQUALL_FEED_PORT")
    ] = 21000,
    host: Host = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Seed of the market (the broker's, to agree).")] = 0,
    ping_interval: Annotated[
        float, typer.Option(help="Seconds between PINGPONG heartbeats (KIS: about 100).")
    ] = 100.0,
    records_per_frame: Annotated[
        int, typer.Option(help="Records per data frame (KIS sends up to a few dozen).")
    ] = 1,
) -> None:
    """Serve a simulated KIS realtime feed (WebSocket at /tryitout) until Ctrl-C.

    On its own it accepts any UUID-shaped approval key, each key its own app; `squall up`
    runs it beside the mock broker, where only keys the broker issued open a session. The
    control plane (feed faults, journal, connections) is under /_squall, as the broker's.
    """
    from mocks.feed import FeedConfig, serve_feed

    config = _settings_or_exit(
        FeedConfig,
        "feed",
        {
            "seed": ("--seed", seed),
            "ping_interval_s": ("--ping-interval", ping_interval),
            "records_per_frame": ("--records-per-frame", records_per_frame),
        },
    )
    token = _control_token()

    async def main() -> None:
        async with serve_feed(config, host=host, port=port, control_token=token) as server:
            await _announce(
                f"Squall mock KIS realtime feed (seed {seed}) — "
                f"{_control_plane(server.url, token)}; Ctrl-C stops it",
                f"{server.ws_url}/tryitout",
            )

    _serve_until_interrupted(main(), {port: ("the mock feed", "--port", "SQUALL_FEED_PORT")})


@mock_app.command("proxy")
def mock_proxy(
    listen: Annotated[
        int,
        typer.Option(
            help="TCP port clients connect to; 0 picks a free one.", envvar="SQUALL_PROXY_PORT"
        ),
    ],
    upstream: Annotated[
        str, typer.Option(help="The service to forward to, HOST:PORT (e.g. 127.0.0.1:5432).")
    ],
    host: Host = "127.0.0.1",
    control_port: Annotated[
        int,
        typer.Option(
            help="HTTP port of the control plane; 0 picks a free one.",
            envvar="SQUALL_PROXY_CONTROL_PORT",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed for probabilities and jitter.")] = 0,
) -> None:
    """Serve a TCP fault proxy (PostgreSQL, Redis, any TCP service) until Ctrl-C.

    Prints the listening address, then the control plane's URL: the proxied port is raw
    TCP, so fault rules, the journal and the open connections are served over HTTP on a
    port of their own (/_squall/faults, /_squall/journal, /_squall/proxy/connections),
    loopback only unless SQUALL_CONTROL_TOKEN is set.
    """
    from rich.markup import escape

    from mocks.proxy import ProxyConfig, parse_address, serve_proxy

    try:
        upstream_host, upstream_port = parse_address(upstream)
    except ValueError as exc:
        err.print(f"[red]error:[/red] invalid --upstream {escape(repr(upstream))}: {exc}")
        raise typer.Exit(2) from None
    config = _settings_or_exit(
        ProxyConfig,
        "proxy",
        {
            "listen_host": ("--host", host),
            "listen_port": ("--listen", listen),
            "upstream_host": ("--upstream", upstream_host),
            "upstream_port": ("--upstream", upstream_port),
            "seed": ("--seed", seed),
        },
    )
    token = _control_token()

    async def main() -> None:
        async with serve_proxy(config, control_port=control_port, control_token=token) as proxy:
            await _announce(
                f"Squall TCP fault proxy {escape(proxy.address)} → {escape(config.upstream)} "
                f"(seed {seed}) — "
                f"{_control_plane(proxy.control_url, token)}; Ctrl-C stops it",
                proxy.address,
                proxy.control_url,
            )

    _serve_until_interrupted(
        main(),
        {
            listen: ("the proxy", "--listen", "SQUALL_PROXY_PORT"),
            control_port: (
                "the proxy's control plane",
                "--control-port",
                "SQUALL_PROXY_CONTROL_PORT",
            ),
        },
    )


@app.command("system")
def system_command(
    port: Annotated[
        int,
        typer.Option(
            help="TCP port of the gateway; 0 picks a free one.", envvar="SQUALL_SYSTEM_PORT"
        ),
    ] = 8080,
    host: Host = "127.0.0.1",
) -> None:
    """Serve the trading system: its gateway (/ws, /health, /metrics) and the dashboard.

    Configured from the environment: SQUALL_KIS_* (broker URL, appkey, appsecret, account),
    SQUALL_FEED_URL (the realtime server), and optionally SQUALL_SERVICE_* and
    SQUALL_GATEWAY_*. `squall up` starts it against the mocks with all of that filled in.
    """
    from system.app import SystemSettings, running_system
    from system.broker import SettingsError
    from system.gateway import serve as serve_gateway

    try:
        settings = SystemSettings.from_env()
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def main() -> None:
        async with (
            running_system(settings) as system,
            serve_gateway(system.app, host, port) as server,
        ):
            await _announce(
                f"Squall trading system — dashboard at {server.url}/; Ctrl-C stops it", server.url
            )

    _serve_until_interrupted(main(), {port: ("the system", "--port", "SQUALL_SYSTEM_PORT")})


@app.command("up")
def up_command(
    port: Annotated[
        int,
        typer.Option(
            help="TCP port of the system's gateway and dashboard; 0: any free.",
            envvar="SQUALL_SYSTEM_PORT",
        ),
    ] = 8080,
    broker_port: Annotated[
        int,
        typer.Option(help="Mock broker's port; 0 picks a free one.", envvar="SQUALL_BROKER_PORT"),
    ] = 0,
    feed_port: Annotated[
        int, typer.Option(help="Mock feed's port; 0 picks a free one.", envvar="SQUALL_FEED_PORT")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated market.")] = 0,
    broker: Annotated[
        Api,
        typer.Option(
            help="The broker the mocks play and the system talks to: KIS Open API or Kiwoom "
            "REST (REST and realtime).",
            envvar="SQUALL_BROKER",
        ),
    ] = Api.kis,
) -> None:
    """Start the mock broker, the mock feed and the system against them; print the URLs.

    For trying Squall by hand: open the dashboard, subscribe a ticker (005930), then inject
    faults through the mocks' control planes (`curl -X POST .../_squall/faults`) and watch
    the page go stale and recover. Everything listens on loopback; Ctrl-C stops it all.

    The system's policy comes from the environment as for `squall system`: SQUALL_SERVICE_*,
    SQUALL_GATEWAY_* (e.g. the operator token) and, with SQUALL_TRADING_MODE set, the
    trading desk's SQUALL_TRADING_*. Where it connects, and as whom, is the mocks'.
    """
    from harness.stack import system_settings
    from mocks.broker import BrokerConfig
    from mocks.world import serve_world
    from system.app import policy_from_env, running_system
    from system.broker import SettingsError
    from system.gateway import serve as serve_gateway

    try:
        policy = policy_from_env()
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def main() -> None:
        async with (
            serve_world(
                BrokerConfig(api=broker.value, seed=seed),
                broker_port=broker_port,
                feed_port=feed_port,
            ) as world,
            running_system(dataclasses.replace(system_settings(world), **policy)) as system,
            serve_gateway(system.app, "127.0.0.1", port) as gateway,
        ):
            played = "Kiwoom" if broker == Api.kiwoom else "KIS"
            lines = [
                ("dashboard", f"{gateway.url}/"),
                ("gateway WebSocket", gateway.ws_url),
                ("health", f"{gateway.url}/health"),
                ("metrics", f"{gateway.url}/metrics"),
                (f"mock broker ({played} REST)", world.broker.url),
                ("mock broker control plane", f"{world.broker.url}/_squall/docs"),
                (f"mock feed ({played} realtime)", world.feed_url),
                ("mock feed control plane", f"{world.feed.url}/_squall/docs"),
            ]
            await _announce(
                f"Squall is up ({played}, seed {seed}); Ctrl-C stops everything",
                *(f"{name:<27} {url}" for name, url in lines),
            )

    _serve_until_interrupted(
        main(),
        {
            port: ("the system", "--port", "SQUALL_SYSTEM_PORT"),
            broker_port: ("the mock broker", "--broker-port", "SQUALL_BROKER_PORT"),
            feed_port: ("the mock feed", "--feed-port", "SQUALL_FEED_PORT"),
        },
    )


def _settings_or_exit(model: type[M], what: str, options: dict[str, tuple[str, object]]) -> M:
    """``model`` from the options given (field: (option, value)); on a bad value, one line
    per problem naming the option and the setting, and exit 2."""
    try:
        return model.model_validate({field: value for field, (_, value) in options.items()})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            option, value = options.get(field, (field, None))
            message = error["msg"].removeprefix("Value error, ")
            err.print(
                f"[red]error:[/red] invalid {what} setting {option} {value!r} ({field}): {message}"
            )
        raise typer.Exit(2) from None


async def _announce(banner: str, *lines: str) -> None:
    """Say what serves, then serve until interrupted: ``banner`` for people on stderr, and
    ``lines`` (the URLs) on stdout, one a line, flushed, for scripts that wait for them."""
    err.print(banner)
    for line in lines:
        print(line, flush=True)
    await asyncio.Event().wait()


def _control_token() -> str | None:
    """The mocks' control-plane token (SQUALL_CONTROL_TOKEN); None: loopback only."""
    return os.environ.get("SQUALL_CONTROL_TOKEN") or None


def _control_plane(url: str, token: str | None) -> str:
    who = "control token required" if token else "loopback only"
    return f"control plane at {url}/_squall ({who})"


PortOptions = dict[int, tuple[str, str, str]]


def _serve_until_interrupted(main: Coroutine[Any, Any, None], ports: PortOptions) -> None:
    """Run a server command's ``main``; a taken port exits 2 with a message naming the port,
    its holder, and the option and variable that pick another (``ports``: port → (what
    listens there, option, environment variable))."""
    from rich.markup import escape

    from harness.ports import conflict_message
    from mocks.server import PortInUse
    from system.gateway.server import PortInUse as GatewayPortInUse
    from system.storage.errors import StorageError

    try:
        asyncio.run(main)
    except (PortInUse, GatewayPortInUse) as exc:
        known = ports.get(exc.port)
        message = (
            conflict_message(known[0], exc.host, exc.port, known[1], known[2])
            if known is not None and exc.port != 0
            else str(exc.strerror)
        )
        err.print(f"[red]error:[/red] {escape(message)}")
        raise typer.Exit(2) from None
    except StorageError as exc:  # the database refused the system at start-up
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("stopped")


class ClockChoice(StrEnum):
    virtual = "virtual"
    real = "real"


def _load_all(
    paths: list[Path], keyword: str | None, *, validating: bool = False
) -> list[tuple[Path, Scenario]]:
    """Every scenario under ``paths`` that ``-k`` selects; exit 2 on any invalid input.

    ``validating`` (``squall validate``) also names each valid file, so a directory's check
    reads as a full account rather than only its failures.
    """
    from harness.scenario import ScenarioError, discover, load_file
    from harness.select import SelectionError, matches

    files = discover(paths)
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        err.print(f"[red]error:[/red] no such file or directory: {', '.join(missing)}")
        raise typer.Exit(2)
    if not files:
        where = ", ".join(map(str, paths))
        err.print(f"[red]error:[/red] no scenario files (*.yaml, *.yml) under {where}")
        raise typer.Exit(2)
    loaded: list[tuple[Path, Scenario]] = []
    invalid = 0
    for file in files:
        try:
            loaded.append((file, load_file(file)))
            if validating:
                print(f"ok  {file}  ({loaded[-1][1].name})")
        except ScenarioError as exc:
            invalid += 1
            for problem in exc.problems:
                # Unwrapped, one per line: editors and CI annotators parse file:line:column.
                print(problem, file=sys.stderr)
    if invalid:
        outcome = f"of {len(files)} checked" if validating else "nothing was run"
        err.print(f"[red]{invalid} invalid scenario file(s)[/red] {outcome}")
        raise typer.Exit(2)
    if keyword:
        try:
            loaded = [
                (file, scenario)
                for file, scenario in loaded
                if matches(keyword, " ".join([scenario.name, *scenario.tags, str(file)]))
            ]
        except SelectionError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if not loaded:
            err.print(f"[red]error:[/red] -k {keyword!r} selects none of {len(files)} scenario(s)")
            raise typer.Exit(2)
    return loaded


@app.command("run")
def run_command(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or directories.")],
    keyword: Annotated[
        str | None,
        typer.Option("-k", help="Only scenarios whose name, tags or path match, e.g. 'storm'."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override every scenario's seed.")] = None,
    clock: Annotated[
        ClockChoice | None, typer.Option(help="Override every scenario's clock.")
    ] = None,
    broker: Annotated[
        Api | None,
        typer.Option(
            help="Run against this broker only (scenarios that don't list it are skipped); "
            "by default each scenario runs against every broker its 'brokers' lists."
        ),
    ] = None,
    report_json: Annotated[Path | None, typer.Option(help="Write results as JSON here.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here (for CI).")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    log: Annotated[
        Path, typer.Option(help="Where the log lines of the system and the mocks go.")
    ] = Path("build/squall-run.log"),
) -> None:
    """Run scenarios: live progress, then a table of verdicts.

    Exit status: 0 when every scenario passed, 1 when an expectation failed, 2 on invalid
    input (a malformed file, an unknown option value, nothing selected).
    """
    ok = run_scenarios(
        paths,
        keyword=keyword,
        seed=seed,
        clock=None if clock is None else clock.value,
        broker=None if broker is None else broker.value,
        report_json=report_json,
        junit=junit,
        html=html,
        log=log,
    )
    raise typer.Exit(0 if ok else 1)


def run_scenarios(
    paths: list[Path],
    *,
    keyword: str | None = None,
    seed: int | None = None,
    clock: ClockKind | None = None,
    broker: BrokerApi | None = None,
    report_json: Path | None = None,
    junit: Path | None = None,
    html: Path | None = None,
    console: Console | None = None,
    log: Path | None = None,
) -> bool:
    """Load, run and report; returns whether everything passed (exits 2 on bad input).

    The system's and the mocks' log lines go to ``log`` (when given), not to the terminal:
    a storage outage makes the system log every retry, which would bury the progress."""
    from harness.report import Progress, print_summary, write_html, write_json, write_junit
    from harness.runner import Options, run_name, run_scenario

    out = console or Console()
    loaded = _load_all(paths, keyword)
    results = []
    runs = [
        (file, scenario, api)
        for file, scenario in loaded
        for api in scenario.brokers
        if broker is None or api == broker
    ]
    if not runs:
        err.print(f"[red]error:[/red] none of the {len(loaded)} scenario(s) runs against {broker}")
        raise typer.Exit(2)
    with _logging_to(log), Progress(out) as progress:
        for file, scenario, api in runs:
            handle = progress.start(run_name(scenario, api), scenario.duration)
            result = run_scenario(
                scenario,
                str(file),
                Options(seed=seed, clock=clock, broker=api),
                lambda now, handle=handle: progress.advance(handle, now),  # type: ignore[misc]
            )
            progress.finish(handle, result.passed)
            results.append(result)
    print_summary(results, out)
    for target, write in ((report_json, write_json), (junit, write_junit), (html, write_html)):
        if target is not None:
            write(results, target)
            out.print(f"wrote {target}")
    if log is not None and log.exists() and log.stat().st_size:
        out.print(f"log lines of the system and the mocks: {log}")
    from rich.markup import escape

    from harness import leaks

    # Every file this run wrote, searched for every secret of its runs (harness.leaks).
    found = leaks.SEEN.leaks_in_files(
        path for path in (report_json, junit, html, log) if path is not None
    )
    for line in found[:20]:
        # Not wrapped: the path and line number must stay one piece to be found.
        err.print(f"[red]secret in a report:[/red] {escape(line)}", soft_wrap=True)
    return all(result.passed for result in results) and not found


@contextlib.contextmanager
def _logging_to(path: Path | None) -> Iterator[None]:
    """Send every log record (INFO and up) to ``path`` while the block runs; none to the
    terminal (Python prints warnings there when no handler is configured)."""
    if path is None:
        yield
        return
    from rich.markup import escape

    # Opened now: a path that cannot be written is bad input, said before anything runs,
    # and a previous run's log is emptied rather than shown as this run's.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    except OSError as exc:
        reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc
        err.print(
            f"[red]error:[/red] cannot write the log to {escape(str(path))} "
            f"({escape(str(reason))}); name another file with --log"
        )
        raise typer.Exit(2) from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)
        handler.close()


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or directories.")],
) -> None:
    """Check scenario files without running them; errors point at file:line:column."""
    _load_all(paths, None, validating=True)


@app.command()
def schema() -> None:
    """Print the scenario files' JSON Schema (for editors: yaml-language-server)."""
    from harness.scenario.schema import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))


SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@app.command()
def demo(
    html: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "build/reports/demo.html"
    ),
    seed: Annotated[int | None, typer.Option(help="Override the scenarios' seeds.")] = None,
    real_time: Annotated[
        bool, typer.Option("--real-time", help="Run on the wall clock (takes about 40 minutes).")
    ] = False,
) -> None:
    """The main job: every broker scenario against the system, then the HTML report."""
    broker = SCENARIOS / "broker"
    if not broker.is_dir():
        err.print(
            f"[red]error:[/red] the shipped scenarios are not at {broker}; run the demo from a "
            "Squall checkout, or use `squall run PATH`"
        )
        raise typer.Exit(2)
    ok = run_scenarios(
        [broker], seed=seed, clock="real" if real_time else None, html=html.resolve()
    )
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":  # python -m harness.cli: how start-up scenarios run squall
    main()
