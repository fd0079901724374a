"""Running one scenario: start its stack, play its timeline, gather evidence, judge it.

Time zero is the moment the broker is reset after the stack is up, so the broker's clock,
the fault windows, the journal and every report read scenario seconds. The run lasts
exactly ``duration`` seconds of the scenario's clock; calls still running then are
cancelled and recorded as unfinished. The stack is torn down on every exit path (a failed
check, an error, a timeout, Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from harness import leaks
from harness import stack as stacks
from harness.clock import ClockKind, run
from harness.crowd import Crowd
from harness.expect import Evidence, HaltSeen, Sample, check_all, is_token_issuance
from harness.history import (
    BrokerOrder,
    HaltWindow,
    Limits,
    limits_never_exceeded,
    no_orders_while_halted,
    orders_not_lost,
    orders_placed_once,
)
from harness.invariants import (
    orders_not_duplicated,
    secrets_not_leaked,
    secrets_not_printed,
    ticks_match_market,
    unknown_orders_reconciled,
)
from harness.postgres import PostgresClusterError
from harness.redis_server import RedisServer, RedisServerError
from harness.reliability.facts import (
    feed_connections,
    gather_tallies,
    strikes,
    unknown_outcomes,
)
from harness.result import (
    BrokerCall,
    Check,
    HealthSample,
    Mark,
    ScenarioResult,
    Timeline,
    Window,
)
from harness.scenario.model import (
    DESK_ACTIONS,
    AlertsFaultSpec,
    DatabaseFaultSpec,
    FeedFaultSpec,
    Outage,
    RedisFaultSpec,
    Scenario,
    Step,
    slug,
)
from harness.startup import DEFAULT_LAUNCHER, launch
from harness.stored import HalfWrittenProbe, StoredRows, read_stored, writes_not_lost
from harness.watchers import Watchers
from harness.workload import History, Workloads
from mocks.broker.config import Api
from mocks.control_client import ControlError
from mocks.faults import Cut, FaultRule, FeedFaultRule, ProxyFaultRule, Refuse
from mocks.journal import Entry
from mocks.server import PortInUse
from mocks.webhook import WebhookFaultRule
from system.market import PriceUpdate
from system.service import OrderRecord
from system.storage.buffer import WriteBufferError
from system.storage.errors import StorageError
from system.trading.desk import Desk

SAMPLE_EVERY_S = 1.0
# After the run, how long the system's write buffer gets to write what it still holds.
FINAL_FLUSH_S = 30.0

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Options:
    seed: int | None = None  # None: the scenario's own
    clock: ClockKind | None = None  # None: the scenario's own
    broker: Api | None = None  # None: the first of the scenario's brokers
    # How a start-up scenario runs ``squall``: the argv its arguments follow.
    launcher: tuple[str, ...] = DEFAULT_LAUNCHER


def run_scenario(
    scenario: Scenario, path: str, options: Options = Options(), progress: Progress | None = None
) -> ScenarioResult:
    """Run one scenario on its clock in a fresh event loop; never raises for a failed run."""
    clock: ClockKind = options.clock or scenario.clock
    seed = scenario.seed if options.seed is None else options.seed
    api = options.broker or scenario.brokers[0]
    if api not in scenario.brokers:
        return _broken(
            scenario,
            path,
            seed,
            clock,
            f"this scenario runs against {', '.join(scenario.brokers)} only (its 'brokers'), "
            f"not {api}; add {api} there if it holds for {api} too",
        )
    # The database is a process of its own too, but every wait on it is guarded (see
    # harness.clock.RealtimeGuard); a start-up's command is not, and waits as it likes.
    if clock == "virtual" and scenario.start is not None:
        return _broken(
            scenario,
            path,
            seed,
            clock,
            "this scenario runs only on real time: it starts a process of its own; run it "
            "without --clock virtual",
        )
    started = time.perf_counter()
    try:
        playing = (
            _play(scenario, path, seed, clock, progress, api)
            if scenario.start is None
            else _start_up(scenario, path, seed, options.launcher)
        )
        with _collecting_less():
            result = run(playing, clock)
    except (
        stacks.StackError,
        PortInUse,
        ControlError,
        OSError,
        TimeoutError,
        StorageError,
        PostgresClusterError,
        RedisServerError,
    ) as exc:
        result = _broken(scenario, path, seed, clock, f"{type(exc).__name__}: {exc}")
    result.wall_seconds = time.perf_counter() - started
    result.name = run_name(scenario, api)
    return result


@contextlib.contextmanager
def _collecting_less() -> Iterator[None]:
    """Python's cycle collector, run less often during a run.

    A run allocates millions of short-lived objects (frames, records, journal entries) that
    reference counting frees; the collector, by default after every 700 allocations,
    mostly walks the ones that stay. Fifty thousand, with what existed before the run
    frozen out of its walks, takes ~6 % off a simulated trading day (31.7 s against 33.7 s,
    in alternating runs). The settings are restored after the run."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def _redis_outage(
    server: RedisServer, step: Step, history: History, duration: float, marks: list[Mark]
) -> None:
    """Stop the real server for the step's length, then start it again on the same port."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, server.stop)
    marks.append(Mark(history.now(), f"{step.label}: Redis stopped"))
    end = step.over_at(duration)
    await asyncio.sleep(max(0.0, end - history.now()))
    if end < duration:
        await loop.run_in_executor(None, server.start)
        marks.append(Mark(history.now(), f"{step.label}: Redis started again"))


def run_name(scenario: Scenario, api: Api) -> str:
    """The scenario's name, with the broker when it runs against more than one."""
    return f"{scenario.name} [{api}]" if len(scenario.brokers) > 1 else scenario.name


def _broken(scenario: Scenario, path: str, seed: int, clock: str, error: str) -> ScenarioResult:
    return ScenarioResult(
        name=scenario.name,
        path=path,
        seed=seed,
        clock=clock,
        passed=False,
        simulated_seconds=0.0,
        wall_seconds=0.0,
        journal_digest="",
        error=error,
        summary=scenario.summary,
        tags=tuple(scenario.tags),
    )


async def _play(
    scenario: Scenario,
    path: str,
    seed: int,
    clock: ClockKind,
    progress: Progress | None,
    api: Api = "kis",
) -> ScenarioResult:
    said = _LogLines()
    logging.getLogger().addHandler(said)
    try:
        return await _play_on(scenario, path, seed, clock, progress, api, said)
    finally:
        logging.getLogger().removeHandler(said)


class _LogLines(logging.Handler):
    """Every line logged during a run, exceptions included: searched for the run's secrets
    (``secrets-not-printed``), as an operator's log would show them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a record that can't be formatted has no text
            self.lines.append(self.format(record))


async def _play_on(
    scenario: Scenario,
    path: str,
    seed: int,
    clock: ClockKind,
    progress: Progress | None,
    api: Api,
    said: _LogLines,
) -> ScenarioResult:
    async with stacks.start(scenario, seed, api) as stack:
        feed_control = stack.feed_control
        origin = stack.origin
        for step in scenario.faults:
            fault = step.fault
            assert fault is not None
            if isinstance(fault, RedisFaultSpec):
                continue  # a real server, stopped and started by its step (play, below)
            if isinstance(fault, AlertsFaultSpec):
                assert stack.webhook is not None  # the model requires alerts in needs
                stack.webhook.add_fault(
                    WebhookFaultRule(id=slug(step.label), what=fault.do, when=step.when())
                )
                continue
            rule = {"id": slug(step.label), "where": fault.match, "what": fault.do}
            if isinstance(fault, FeedFaultSpec):
                assert feed_control is not None  # the model requires feed in needs
                await feed_control.add_fault(FeedFaultRule(**rule, when=step.when()))
            elif isinstance(fault, DatabaseFaultSpec):
                assert stack.database is not None  # the model requires database in needs
                for proxy_rule in database_rules(step):
                    await stack.database.proxy.add_fault(proxy_rule)
            else:
                await stack.broker.add_fault(FaultRule(**rule, when=step.when()))
        for step in scenario.market_moves:
            await stack.broker.add_market_event(market_event(step))
        history = History(origin)
        # Every price the system took in, on scenario seconds, for ticks-match-market.
        taken: list[PriceUpdate] = []
        if stack.feed is not None:
            stack.feed.add_listener(
                lambda update: taken.append(dataclasses.replace(update, at=update.at - origin))
            )
        watchers = (
            None
            if stack.gateway_server is None
            else Watchers(stack.gateway_server.ws_url, history, scenario.duration)
        )
        crowd = (
            None
            if stack.gateway_server is None
            else Crowd(stack.gateway_server.url, history, scenario.duration, seed)
        )
        # Actions happen before any call due at the same second: a call racing an action
        # over another connection would reach the broker first on some runs, not others.
        actions = {step.label: asyncio.Event() for step in scenario.timeline if step.action}

        async def after_actions(due: float) -> None:
            for step in scenario.timeline:
                if step.action is not None and step.at <= due:
                    await actions[step.label].wait()

        workloads = Workloads(
            stack.service,
            history,
            scenario.duration,
            after_actions,
            gateway_url=None if stack.gateway_server is None else stack.gateway_server.url,
        )
        probe = None
        if stack.database is not None and "groups-not-half-written" in scenario.invariant_names:
            faults = [
                (step.at, step.over_at(scenario.duration))
                for step in scenario.timeline
                if step.fault is not None and step.fault.target == "database"
            ]
            probe = HalfWrittenProbe(stack.database.direct_url, origin, faults)
        marks: list[Mark] = []
        samples: list[Sample] = []

        async def play(step: Step) -> None:
            delay = step.at - history.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if step.action == "expire-tokens":
                expired = await stack.broker.expire_tokens()
                marks.append(Mark(history.now(), f"{step.label}: expired {expired} token(s)"))
                actions[step.label].set()
            elif step.action in DESK_ACTIONS:
                desk = stack.desk
                assert desk is not None  # the model requires trading in needs
                if step.action == "press-kill-switch":
                    changed = desk.engage(f"pressed by the scenario ({step.label})", by="scenario")
                else:
                    changed = desk.release(by="scenario")
                done = step.action.replace("-", " ") if changed else "no change"
                marks.append(Mark(history.now(), f"{step.label}: {done}"))
                actions[step.label].set()
            elif step.quotes is not None or step.orders is not None or step.api is not None:
                await workloads.run(step)
            elif step.watch is not None:
                assert watchers is not None  # the model requires gateway in needs
                await watchers.run(step)
            elif step.load is not None:
                assert crowd is not None  # the model requires gateway in needs
                await crowd.run(step)
            elif isinstance(step.fault, RedisFaultSpec):
                assert stack.redis is not None  # the model requires redis in needs
                await _redis_outage(stack.redis, step, history, scenario.duration, marks)

        keep_metrics = metrics_sampled(scenario)

        async def sample() -> None:
            tick = 0
            while True:
                health = stack.health()
                samples.append(
                    Sample(
                        history.now(),
                        HealthSample(history.now(), health.state, tuple(health.reasons)),
                        stack.metrics() if keep_metrics else {},
                    )
                )
                if progress is not None:
                    progress(history.now())
                # On a fixed grid, counted rather than derived from the clock: sleeps never
                # drift it, and a reading a hair below a tick can't make a zero-length sleep.
                tick += 1
                await asyncio.sleep(max(0.0, tick * SAMPLE_EVERY_S - history.now()))

        steps = [
            asyncio.create_task(play(step))
            for step in scenario.timeline
            if not step.fault or isinstance(step.fault, RedisFaultSpec)
        ]
        sampler = asyncio.create_task(sample())
        background = [sampler] if probe is None else [sampler, asyncio.create_task(probe.run())]
        try:
            async with asyncio.timeout(scenario.duration + 1.0):
                await asyncio.sleep(max(0.0, scenario.duration - history.now()))
                for task in steps:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            for task in [*steps, *background]:
                task.cancel()
            await asyncio.gather(*steps, *background, return_exceptions=True)
            await workloads.stop()
        simulated = history.now()
        # PostgreSQL's rows and the broker's books are read once each, for the checks and
        # the tallies alike.
        stored_rows = await _final_rows(stack)
        stored = _stored_checks(scenario, stack, probe, stored_rows)
        booked = await _final_books(stack)
        traded = _history_checks(scenario, stack, origin, booked)
        tallies = gather_tallies(stack, history.calls, booked, stored_rows)
        final_metrics = stack.metrics()
        records = stack.service.orders()
        journal = await stack.broker.journal()
        feed_journal = [] if feed_control is None else await feed_control.journal()
        alerts = [] if stack.webhook is None else stack.webhook.entries()
        market = stack.market_at
        halts = [] if stack.desk is None else halts_seen(stack.desk, origin)
        secrets = stack.secrets()
        leaks.SEEN.update(secrets)
    evidence = Evidence(
        duration=scenario.duration,
        journal=journal,
        calls=sorted(history.calls, key=lambda call: call.at),
        samples=samples,
        final_metrics=final_metrics,
        feed_journal=feed_journal,
        ticks=history.ticks,
        halts=halts,
        alerts=alerts,
    )
    checks = check_all(scenario, evidence)
    checks += _invariants(scenario, history, journal, records, origin)
    checks += stored
    checks += traded
    if "ticks-match-market" in scenario.invariant_names:
        checks.append(
            # Only what came within the run: the checks after it (the desk's orders
            # settling) may let the clock, and the feed, go on a little.
            ticks_match_market(
                feed_journal,
                [update for update in taken if update.at <= scenario.duration],
                market,
                until=scenario.duration - 1.0,
            )
        )
    timeline = _timeline(scenario, evidence, marks, records, origin)
    # The journals as JSON, once: for the digest and the secret scan alike.
    broker_rows = [entry.to_json() for entry in journal]
    feed_rows = [event.to_json() for event in feed_journal]
    if "secrets-not-printed" in scenario.invariant_names:
        checks.append(
            secrets_not_leaked(
                secrets,
                {
                    "the log": "\n".join(said.lines),
                    "the broker's journal": json.dumps(broker_rows),
                    "the feed's journal": json.dumps(feed_rows),
                    "the alerts": json.dumps([repr(alert) for alert in alerts]),
                    "the verdicts": "\n".join(f"{c.description} {c.observed}" for c in checks),
                    "the timeline": repr(timeline),
                },
            )
        )
    return ScenarioResult(
        name=scenario.name,
        path=path,
        seed=seed,
        clock=clock,
        passed=all(check.passed for check in checks),
        simulated_seconds=simulated,
        wall_seconds=0.0,
        journal_digest=journal_digest(broker_rows, feed_rows, with_times=clock == "virtual"),
        checks=checks,
        timeline=timeline,
        summary=scenario.summary,
        tags=tuple(scenario.tags),
        tallies=tallies,
    )


def metrics_sampled(scenario: Scenario) -> bool:
    """Whether a check reads the metrics at a moment before the run's end: a ``metric``
    expectation with ``until``, or one of the steady state (its first window ends where the
    faults begin); ``within`` does not apply to metrics. The others read the final metrics,
    so a run without such a check samples health alone: the metrics cost ~120 µs a sample,
    a few seconds of a simulated day."""
    windowed = any(e.metric is not None and e.until is not None for e in scenario.expect)
    steady = scenario.steady_state is not None and any(
        e.metric is not None for e in scenario.steady_state.expect
    )
    return windowed or steady


async def _start_up(
    scenario: Scenario, path: str, seed: int, launcher: Sequence[str]
) -> ScenarioResult:
    """A start-up scenario: its command run into its condition, and judged."""
    launched = await launch(scenario, seed, launcher)
    evidence = Evidence(
        duration=scenario.duration, journal=[], calls=[], samples=[], launched=launched
    )
    checks = check_all(scenario, evidence)
    if "secrets-not-printed" in scenario.invariant_names:
        checks.append(secrets_not_printed(launched))
    assert scenario.start is not None
    ended = (
        "stopped at the deadline, still running"
        if launched.status is None
        else f"exited with status {launched.status}"
    )
    marks = [Mark(0.0, f"started {scenario.start.label}"), Mark(launched.seconds, ended)]
    # What the seed decides of a start-up is how it ends; its output holds ports and pids.
    digest = hashlib.sha256(f"{scenario.start.label} {ended}".encode()).hexdigest()[:16]
    return ScenarioResult(
        name=scenario.name,
        path=path,
        seed=seed,
        clock="real",
        passed=all(check.passed for check in checks),
        simulated_seconds=launched.seconds,
        wall_seconds=0.0,
        journal_digest=f"sha256:{digest}",
        checks=checks,
        timeline=Timeline(duration=scenario.duration, marks=marks),
        summary=scenario.summary,
        tags=tuple(scenario.tags),
    )


async def _final_rows(stack: stacks.Stack) -> StoredRows | None:
    """What PostgreSQL holds once the write buffer has written what it still held (the
    database faults are lifted first, all of them, since the proxy in front of this run's
    database carries nothing else: the scenario is over, and its backlog gets its chance);
    None without storage."""
    if stack.storage is None or stack.database is None or stack.records is None:
        return None
    await stack.database.proxy.clear_faults()
    with contextlib.suppress(WriteBufferError):
        await stack.storage.buffer.flush(FINAL_FLUSH_S)
    return await read_stored(stack.database.direct_url)


def _stored_checks(
    scenario: Scenario,
    stack: stacks.Stack,
    probe: HalfWrittenProbe | None,
    stored_rows: StoredRows | None,
) -> list[Check]:
    """The stored invariants, over what ``_final_rows`` read."""
    if stored_rows is None or stack.records is None:
        return []
    checks: list[Check] = []
    if "writes-not-lost" in scenario.invariant_names:
        checks.append(writes_not_lost(stored_rows, stack.records.accepted))
    if probe is not None:
        checks.append(probe.check())
    return checks


async def _final_books(stack: stacks.Stack) -> list[dict[str, Any]]:
    """The broker's books once the run is over. With a desk, the desk opens nothing more
    first, and the orders still working get a bounded while to settle; what is still open
    then is judged as it stands (an order in flight shows as unknown, never as lost)."""
    if stack.desk is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_FLUSH_S):
                await stack.desk.wind_down()
    return await stack.broker.account_orders()


def _history_checks(
    scenario: Scenario, stack: stacks.Stack, origin: float, books: Sequence[Mapping[str, Any]]
) -> list[Check]:
    """The trading desk's history checks: the broker's books against the system's."""
    names = scenario.invariant_names
    desk = stack.desk
    if desk is None:
        return []
    booked = [
        BrokerOrder(
            odno=row["odno"],
            side=row["side"],
            code=row["code"],
            quantity=row["quantity"],
            filled_quantity=row["filled_quantity"],
            fill_price=row["fill_price"],
            at=row["at"],
            day=date.fromisoformat(row["day"]),
        )
        for row in books
    ]
    records = stack.service.orders()
    checks: list[Check] = []
    if "orders-placed-once" in names:
        checks.append(orders_placed_once(records, booked))
    if "orders-not-lost" in names:
        checks.append(orders_not_lost(records, booked))
    if "limits-never-exceeded" in names:
        gate = desk.gate
        limits = Limits(
            daily_loss=gate.loss_limits.daily_limit,
            cumulative_loss=gate.loss_limits.cumulative_limit,
            exposure_per_asset=gate.trade_limits.max_exposure_per_asset,
            concurrent_positions=gate.trade_limits.max_concurrent_trades,
        )
        checks.append(limits_never_exceeded(booked, limits))
    if "no-orders-while-halted" in names:
        checks.append(no_orders_while_halted(booked, halt_windows(desk, origin)))
    return checks


def halts_seen(desk: Desk, origin: float) -> list[HaltSeen]:
    """Every halt the desk's kill switch took, in scenario seconds."""
    return [
        HaltSeen(event.at - origin, event.halt.reason, event.halt.automatic)
        for event in desk.gate.kill_switch.history
        if event.action == "engaged"
    ]


def halt_windows(desk: Desk, origin: float) -> list[HaltWindow]:
    """When the desk's kill switch was engaged, in scenario seconds."""
    windows: list[HaltWindow] = []
    for event in desk.gate.kill_switch.history:
        if event.action == "engaged":
            windows.append(HaltWindow(event.halt.reason, event.at - origin, None))
        elif windows and windows[-1].end is None:
            last = windows[-1]
            windows[-1] = HaltWindow(last.reason, last.start, event.at - origin)
    return windows


def market_event(step: Step) -> dict[str, object]:
    """A market step as the broker's control plane takes it (whole seconds of its clock,
    which starts with the scenario)."""
    move = step.market
    assert move is not None
    event: dict[str, object] = {"kind": move.kind, "at": int(step.at)}
    if move.pair is not None:
        event["pair"] = move.pair  # a mispricing moves an FX pair
    else:
        event["code"] = move.code
    if move.pct is not None:
        event["pct"] = move.pct
    if step.end is not None:
        event["for"] = int(step.end - step.at)
    return event


def database_rules(step: Step) -> list[ProxyFaultRule]:
    """The proxy rules for a database fault step; an outage is a cut and a refusal."""
    fault = step.fault
    assert isinstance(fault, DatabaseFaultSpec)
    when = step.when()
    if isinstance(fault.do, Outage):
        return [
            ProxyFaultRule(id=f"{slug(step.label)}-cut", what=Cut(), when=when),
            ProxyFaultRule(id=f"{slug(step.label)}-refuse", what=Refuse(), when=when),
        ]
    return [ProxyFaultRule(id=slug(step.label), where=fault.match, what=fault.do, when=when)]


def _invariants(
    scenario: Scenario,
    history: History,
    journal: Sequence[Entry],
    records: Sequence[OrderRecord],
    origin: float,
) -> list[Check]:
    checks: list[Check] = []
    names = scenario.invariant_names
    if "orders-not-duplicated" in names:
        checks.append(orders_not_duplicated(history.orders, journal))
    if "unknown-orders-reconciled" in names:
        checks.append(unknown_orders_reconciled(history.orders, journal, records, origin))
    return checks


def _timeline(
    scenario: Scenario,
    evidence: Evidence,
    marks: list[Mark],
    records: Sequence[OrderRecord],
    origin: float,
) -> Timeline:
    return Timeline(
        duration=scenario.duration,
        faults=[
            *(
                Window(step.label, step.fault.target, step.at, step.end)
                for step in scenario.faults
                if step.fault is not None
            ),
            *(Window(step.label, "market", step.at, step.end) for step in scenario.market_moves),
        ],
        marks=marks,
        broker_calls=[
            BrokerCall(entry.at, entry.path, broker_outcome(entry), is_token_issuance(entry))
            for entry in evidence.journal
        ],
        system_calls=evidence.calls,
        health=[sample.health for sample in evidence.samples],
        strikes=strikes(scenario.faults, evidence.journal, evidence.feed_journal),
        feed_connections=feed_connections(evidence.feed_journal),
        unknown_outcomes=unknown_outcomes(records, origin),
    )


def broker_outcome(entry: Entry) -> str:
    """``ok``, the broker's code, the HTTP status, or what a fault did to the exchange."""
    if entry.outcome != "answered":
        return entry.outcome
    if entry.ok:
        return "ok"
    if entry.code:
        return entry.code
    return f"HTTP {entry.status}"


def journal_digest(
    journal: Sequence[Mapping[str, Any]],
    feed_journal: Sequence[Mapping[str, Any]] = (),
    *,
    with_times: bool,
) -> str:
    """A short hash of what the broker (and the feed) saw, to compare runs of the same seed.

    It covers when each request arrived (to the millisecond, on virtual time), what it was
    (method, path, tr_id, protocol headers) and how it was answered (status, code, fault,
    outcome). It leaves out which stock or order a request named, and compares requests of
    one instant as a set: when hundreds of calls are in flight at once, they reach the
    broker in whichever order the kernel reports their sockets ready, and which stock is
    served first is not something the seed decides. On real time the timestamps are left
    out too, since wall-clock jitter moves every one of them.

    ``journal`` and ``feed_journal`` are the entries as JSON (``to_json()``), as the run
    already holds them for its other checks.
    """
    lines: list[str] = []
    for entry in journal:
        fields = {
            key: value
            for key, value in entry.items()
            if key not in ("seq", "duration", "at", "query", "body")
        }
        at = f"{entry['at']:.3f}" if with_times else "-"
        lines.append(f"{at} {json.dumps(fields, sort_keys=True, ensure_ascii=False)}")
    for event in feed_journal:
        # A client message's text carries the approval key's bytes only through the seeded
        # broker, but its JSON spacing is the client library's business: keep what it said.
        fields = {
            key: value
            for key, value in event.items()
            if key not in ("seq", "at", "message", "detail")
        }
        at = f"{event['at']:.3f}" if with_times else "-"
        lines.append(f"{at} feed {json.dumps(fields, sort_keys=True, ensure_ascii=False)}")
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode() + b"\n")
    return f"sha256:{digest.hexdigest()[:16]}"
