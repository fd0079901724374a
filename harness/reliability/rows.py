"""One row of the reliability table per scenario run, derived from its ``ScenarioResult``
(and, for the load, from the scenario itself).

Recovery, precisely. Each fault is measured from its *end*: a fault window's end, an
action's moment (``expire-tokens`` at 20 s ends at 20 s), or, for a fault that strikes
one feed connection at a time, each strike. Market moves are events, not faults of the
system, and have no recovery.

- **served**: from the end to the answer of the first call a workload started at or after
  the end that succeeded (runs whose workloads call the system).
- **healthy**: from the end to the first health sample reading ``healthy`` after every
  spell of ``degraded`` or ``unhealthy`` that began between the fault's start and
  ``REACTION_S`` after its end; 0 when there was none, or when it was over before the end.
  Health is the system's own verdict (broker, orders, storage; not the feed), sampled
  once a simulated second. Not measured for faults that last to the end of the run.
- **prices**: for each strike that closes, resets, stalls or restarts the system's feed
  connection, from the strike to the first trade the feed sent on a later connection (the
  system is expected to reconnect after a stall too: that is what its stall window is for).
- **settled**: for each spell of an order's outcome being unknown, from its start to the
  system's settling it by asking the broker.

``None`` seconds: not recovered by the end of the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.report.common import verdict
from harness.result import HealthSample, ScenarioResult, Tally, Timeline, Window
from harness.scenario.model import Scenario, Step
from system.trading.settings import TradingSettings

Measure = Literal["served", "healthy", "prices", "settled"]
MEASURES: tuple[Measure, ...] = ("served", "healthy", "prices", "settled")
# A spell of ill health that begins this long after a fault's end is still the fault's:
# the system notices on its next call or probe, and health is sampled once a second.
REACTION_S = 5.0
# The strikes on the feed after which the system must open a new connection.
RECONNECTING = frozenset({"close", "reset", "stall", "restart"})


@dataclass(frozen=True)
class Recovery:
    fault: str  # the timeline step's label
    measure: Measure
    seconds: float | None  # None: not recovered by the end of the run


@dataclass(frozen=True)
class Row:
    """What the table says of one scenario run."""

    scenario: str
    path: str
    verdict: str  # PASS, FAIL or ERROR (harness.report.common)
    checks_passed: int
    checks: int
    load: list[str]
    faults: list[str]
    recoveries: list[Recovery] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    simulated_seconds: float = 0.0
    wall_seconds: float = 0.0  # machine-dependent: never in the README
    error: str | None = None

    def count(self, what: Literal["lost", "duplicated", "unknown"]) -> int | None:
        """The sum over the tallies that can have it; None when none can."""
        counts = [getattr(tally, what) for tally in self.tallies]
        known = [n for n in counts if n is not None]
        return sum(known) if known else None

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["lost"] = self.count("lost")
        document["duplicated"] = self.count("duplicated")
        document["unknown"] = self.count("unknown")
        return document


def row(scenario: Scenario, result: ScenarioResult) -> Row:
    timeline = result.timeline or Timeline(duration=scenario.duration)
    orders = next((t.total for t in result.tallies if t.what == "orders"), None)
    return Row(
        scenario=result.name,
        path=result.path,
        verdict=verdict(result),
        checks_passed=sum(1 for check in result.checks if check.passed),
        checks=len(result.checks),
        load=load_held(scenario, orders),
        faults=faults_injected(scenario, timeline),
        recoveries=recoveries(scenario, timeline),
        tallies=list(result.tallies),
        simulated_seconds=round(result.simulated_seconds, 3),
        wall_seconds=round(result.wall_seconds, 3),
        error=result.error,
    )


# --- the load held ----------------------------------------------------------------------


def load_held(scenario: Scenario, orders: int | None = None) -> list[str]:
    """The scenario's workloads in words, then how long they ran; ``orders``: how many
    orders the desk placed (a trading desk's load is what it decided to do)."""
    held = [words for step in scenario.timeline if (words := _workload(step)) is not None]
    if "trading" in scenario.needs:
        desk = TradingSettings.model_validate(scenario.system.trading)
        stocks = len(desk.codes)
        held.append(
            f"the desk trading {desk.mode} on {stocks} stock{'s' if stocks != 1 else ''}"
            + (f": {orders:,} orders" if orders is not None else "")
        )
    held.append(f"over {scenario.duration:,g} s")
    return held


def _workload(step: Step) -> str | None:
    """A quote, order or api step as "N concurrent ..." (a burst) or "R .../s"."""
    what = {"quotes": "quotes", "orders": "orders", "api": "API requests"}
    if step.watch is not None:
        clients, tickers = step.watch.clients, len(step.watch.tickers)
        frozen = "frozen " if step.watch.slow else ""
        return f"{clients:,} {frozen}dashboards on {tickers} tickers"
    if step.load is not None:
        return f"{step.load.users:,} users ({step.load.shape})"
    load = step.quotes or step.orders or step.api
    if load is None:
        return None
    noun = what[step.kind]
    if step.api is not None:
        noun += f" (GET {step.api.path})"
    if load.burst is not None:
        noun = "quote requests" if step.quotes is not None else noun
        return f"{load.burst:,} concurrent {noun}"
    if load.rate == 1 and step.api is None:
        noun = noun.removesuffix("s")  # 1 quote/s
    return f"{load.rate:g} {noun}/s"


# --- the faults injected ----------------------------------------------------------------


def faults_injected(scenario: Scenario, timeline: Timeline) -> list[str]:
    """Each fault window with how often it struck (or how long it lasted) and each action
    as it was done, in the order they began; then the market's moves, together."""
    struck = Counter(strike.fault for strike in timeline.strikes)
    entries: list[tuple[float, str]] = []
    for window in timeline.faults:
        if window.target == "market":
            continue
        if struck[window.label]:
            detail = f"×{struck[window.label]:,}"
        elif window.end is None:
            detail = f"from {window.start:g} s on"
        else:
            detail = f"{window.end - window.start:g} s"
        entries.append((window.start, f"{window.label} ({window.target}, {detail})"))
    actions = {step.label for step in scenario.timeline if step.action is not None}
    entries += [(m.at, m.label) for m in timeline.marks if m.label.split(":")[0] in actions]
    injected = [text for _, text in sorted(entries, key=lambda entry: entry[0])]
    moves = [window.label for window in timeline.faults if window.target == "market"]
    if moves:
        injected.append(f"market: {', '.join(moves)}")
    return injected


# --- recovery ---------------------------------------------------------------------------


def recoveries(scenario: Scenario, timeline: Timeline) -> list[Recovery]:
    """Every recovery the run shows, by the definitions in the module docstring."""
    found: list[Recovery] = []
    ends: list[tuple[str, float, float]] = [
        (window.label, window.start, window.end)
        for window in timeline.faults
        if window.target not in ("market", "feed") and window.end is not None
    ]
    ends += [(step.label, step.at, step.at) for step in scenario.timeline if step.action]
    for label, start, end in sorted(ends, key=lambda item: item[2]):
        if end >= timeline.duration:
            continue
        if any(call.at >= end for call in timeline.system_calls):
            found.append(Recovery(label, "served", served_again(timeline, end)))
        found.append(Recovery(label, "healthy", healthy_again(timeline.health, start, end)))
    feed = {window.label for window in timeline.faults if window.target == "feed"}
    for strike in timeline.strikes:
        if strike.fault in feed and strike.kind in RECONNECTING:
            seconds = prices_again(timeline, strike.at, strike.connection)
            found.append(Recovery(strike.fault, "prices", seconds))
    for spell in timeline.unknown_outcomes:
        seconds = None if spell.settled is None else spell.settled - spell.since
        found.append(Recovery(_covering(timeline.faults, spell.since), "settled", seconds))
    return found


def served_again(timeline: Timeline, end: float) -> float | None:
    """Seconds from ``end`` to the answer of the first successful call started at or after
    it; None if none succeeded."""
    answered = [
        call.at + call.latency
        for call in timeline.system_calls
        if call.at >= end and call.outcome == "ok" and call.latency is not None
    ]
    return min(answered) - end if answered else None


def healthy_again(health: Sequence[HealthSample], start: float, end: float) -> float | None:
    """Seconds from ``end`` until health read healthy after the fault's spells (module
    docstring); None if it never did again."""
    samples = sorted(health, key=lambda sample: sample.at)
    recovered = end
    spell_began: float | None = None
    for sample in samples:
        if sample.state != "healthy":
            if spell_began is None:
                spell_began = sample.at
        elif spell_began is not None:
            if start <= spell_began <= end + REACTION_S:
                recovered = max(recovered, sample.at)
            spell_began = None
    if spell_began is not None and start <= spell_began <= end + REACTION_S:
        return None  # ill when the run ended
    return recovered - end


def prices_again(timeline: Timeline, at: float, connection: int | None) -> float | None:
    """Seconds from a strike at ``at`` on ``connection`` to the first trade the feed sent
    on a later connection; None if none came."""
    later = [
        c.first_price
        for c in timeline.feed_connections
        if c.first_price is not None
        and c.first_price >= at
        and (connection is None or c.number > connection)
    ]
    return min(later) - at if later else None


def _covering(windows: Iterable[Window], at: float) -> str:
    """The label of the broker fault under way at ``at`` (an order's outcome goes unknown
    when its answer is lost), or ``""``."""
    for window in windows:
        if (
            window.target == "broker"
            and window.start <= at
            and (window.end is None or at <= window.end)
        ):
            return window.label
    return ""
