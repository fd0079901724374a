"""What a scenario run produced: verdicts, figures and a timeline. Reports render only this.

Times are seconds since the scenario's start on the run's clock (virtual or real), so a
report reads the same whichever clock ran it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CheckKind = Literal["expectation", "invariant", "steady-state"]
HealthState = Literal["healthy", "degraded", "unhealthy"]


@dataclass(frozen=True)
class Check:
    """One verdict: an expectation, an invariant or a steady-state probe.

    ``observed`` is what was measured, in words a QA engineer can act on ("3 token requests
    in 60 s starting at t=61.0"); ``where`` is the scenario file position of the check.
    """

    description: str
    passed: bool
    observed: str
    kind: CheckKind = "expectation"
    where: str | None = None


@dataclass(frozen=True)
class Window:
    """A fault that was active from ``start`` to ``end`` (``end`` None: until the run ended)."""

    label: str
    target: str
    start: float
    end: float | None


@dataclass(frozen=True)
class Mark:
    """A one-off event on the timeline: an action such as expiring every token."""

    at: float
    label: str


@dataclass(frozen=True)
class BrokerCall:
    """One request the mock broker saw. ``outcome`` is ``ok``, a broker code such as
    ``EGW00201``, an HTTP status such as ``HTTP 503``, or the fault applied (``hang``)."""

    at: float
    path: str
    outcome: str
    token_issued: bool = False


@dataclass(frozen=True)
class SystemCall:
    """One call a workload made to the system, and how it ended (``ok`` or the error type)."""

    at: float
    workload: str
    operation: str
    outcome: str
    latency: float | None  # None: still running when the scenario ended


@dataclass(frozen=True)
class TickSeen:
    """A price update one dashboard client of a ``watch`` step received."""

    at: float  # scenario seconds
    workload: str
    client: int
    ticker: str
    source: str
    stale: bool
    lag: float  # seconds from the system taking the price in to the client reading it


@dataclass(frozen=True)
class HealthSample:
    at: float
    state: HealthState
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Strike:
    """One time a fault rule acted: on a broker request, or on a feed frame or connection.

    ``fault`` is the timeline step's label, ``kind`` what the rule did (``drop``, ``close``,
    ``reset``, ...) and ``connection`` the feed connection it struck (None on the broker).
    A fault window says when a fault could act; its strikes say how often it did."""

    at: float
    fault: str
    target: str
    kind: str
    connection: int | None = None


@dataclass(frozen=True)
class FeedConnection:
    """One connection of the system to the mock feed: when it opened, when the feed first
    sent a trade on it (None: never), and when it ended (None: open at the end)."""

    number: int
    opened: float
    first_price: float | None
    closed: float | None


@dataclass(frozen=True)
class UnknownOutcome:
    """An order whose outcome was unknown (sent, no verdict) from ``since`` until the system
    settled it by asking the broker at ``settled`` (None: still unknown at the end)."""

    client_order_id: str
    since: float
    settled: float | None


@dataclass
class Timeline:
    duration: float
    faults: list[Window] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    broker_calls: list[BrokerCall] = field(default_factory=list)
    system_calls: list[SystemCall] = field(default_factory=list)
    health: list[HealthSample] = field(default_factory=list)
    strikes: list[Strike] = field(default_factory=list)
    feed_connections: list[FeedConnection] = field(default_factory=list)
    unknown_outcomes: list[UnknownOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class Tally:
    """How many things of one kind a run handled (``what``: orders, writes, calls), and how
    many of them were lost, duplicated or left of unknown outcome. None: that cannot happen
    to this kind of thing (a quote is not placed twice, a write has no unknown outcome).
    The definitions are in ``harness.reliability.facts``."""

    what: str
    total: int
    lost: int
    duplicated: int | None = None
    unknown: int | None = None


@dataclass
class ScenarioResult:
    name: str
    path: str
    seed: int
    clock: str
    passed: bool
    simulated_seconds: float
    wall_seconds: float
    journal_digest: str
    checks: list[Check] = field(default_factory=list)
    timeline: Timeline | None = None
    error: str | None = None  # the run itself broke (set-up failed, a part crashed)
    summary: str = ""
    tags: tuple[str, ...] = ()
    # Orders, writes and calls counted after the run: what was lost, doubled or left unknown.
    tallies: list[Tally] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_json(self) -> dict[str, Any]:
        """The ``--report-json`` shape: one object per scenario."""
        return {
            "name": self.name,
            "path": self.path,
            "passed": self.passed,
            "seed": self.seed,
            "clock": self.clock,
            "simulated_seconds": round(self.simulated_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "journal_digest": self.journal_digest,
            "error": self.error,
            "expectations": [
                {
                    "description": check.description,
                    "kind": check.kind,
                    "passed": check.passed,
                    "observed": check.observed,
                    "where": check.where,
                }
                for check in self.checks
            ],
        }


@dataclass(frozen=True)
class Launched:
    """What a start-up did.

    ``status`` is None when the command was still running at the deadline (and was
    stopped). ``secrets`` are what it was given and must never print, by what they are
    ("the database password"), so a report can say which leaked without showing it.
    """

    argv: tuple[str, ...]
    status: int | None
    output: str
    seconds: float
    deadline: float
    port: int | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)

    @property
    def said(self) -> str:
        """The output with runs of whitespace as one space: a message reads the same
        however the terminal wrapped it."""
        return " ".join(self.output.split())

    def leaked(self) -> dict[str, int]:
        """How many times each secret shows in the output, by what it is. Whitespace is
        ignored, since a terminal may fold a long secret over two lines."""
        solid = "".join(self.output.split())
        found = {what: solid.count(secret) for what, secret in self.secrets.items()}
        return {what: count for what, count in found.items() if count}

    def quoted(self, limit: int) -> str:
        """The end of what it said, for a report, at most ``limit`` characters; withheld
        entirely when it holds a secret, which no report may repeat."""
        if self.leaked():
            return "(withheld: it holds a secret)"
        said = self.said
        return (said if len(said) <= limit else "…" + said[-limit:]) or "(nothing)"
