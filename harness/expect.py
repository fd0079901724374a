"""Checking expectations against the evidence of one run.

The evidence is what the parts recorded, never what the harness believes it did: the mock
broker's journal, the calls the workloads made to the system and how they ended, and the
system's own health and metrics sampled once a simulated second. Each check reports what it
observed, so a failure reads as a finding ("3 token issuances in 60 s from t=61.0").
"""

from __future__ import annotations

import bisect
import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.result import Check, CheckKind, HealthSample, Launched, SystemCall, TickSeen
from harness.scenario.model import (
    COUNTS,
    AlertsReceived,
    BrokerRequests,
    Expectation,
    FeedEvents,
    Halts,
    Scenario,
    Step,
    SystemCalls,
    Ticks,
)
from harness.stats import percentile
from mocks.journal import Entry, FeedEntry
from mocks.webhook import WebhookEntry

_Seen = TypeVar("_Seen")


@dataclass(frozen=True)
class Sample:
    """The system's health and metrics at one moment (scenario seconds)."""

    at: float
    health: HealthSample
    metrics: dict[str, float]


@dataclass(frozen=True)
class HaltSeen:
    """Trading halted at ``at`` (scenario seconds) for ``reason``."""

    at: float
    reason: str
    automatic: bool


@dataclass
class Evidence:
    duration: float
    journal: list[Entry]
    calls: list[SystemCall]
    samples: list[Sample]
    final_metrics: dict[str, float] = field(default_factory=dict)
    feed_journal: list[FeedEntry] = field(default_factory=list)
    ticks: list[TickSeen] = field(default_factory=list)
    halts: list[HaltSeen] = field(default_factory=list)
    # What the alert webhook receiver got (with ``alerts`` in needs).
    alerts: list[WebhookEntry] = field(default_factory=list)
    # A start-up scenario's evidence: what its command did.
    launched: Launched | None = None


def check_all(scenario: Scenario, evidence: Evidence) -> list[Check]:
    checks = [check(scenario, e, evidence, None, "expectation") for e in scenario.expect]
    if scenario.steady_state is not None:
        before, after = steady_windows(scenario)
        for expectation in scenario.steady_state.expect:
            checks.append(check(scenario, expectation, evidence, before, "steady-state", "before"))
            checks.append(check(scenario, expectation, evidence, after, "steady-state", "after"))
    return checks


def steady_windows(scenario: Scenario) -> tuple[tuple[float, float], tuple[float, float]]:
    """Before the first disruption starts; from ``settle`` after the last one ends to the end.

    Disruptions are fault steps and actions (expiring every token is a fault too).
    """
    assert scenario.steady_state is not None
    disruptions = scenario.disruptions
    first = min(step.at for step in disruptions)
    last = max(step.over_at(scenario.duration) for step in disruptions)
    after = min(last + scenario.steady_state.settle, scenario.duration)
    return (0.0, first), (after, scenario.duration)


def check(
    scenario: Scenario,
    expectation: Expectation,
    evidence: Evidence,
    window: tuple[float, float] | None,
    kind: CheckKind,
    phase: str | None = None,
) -> Check:
    start, end = window if window is not None else _window(scenario, expectation, evidence)
    description = expectation.expect or describe(expectation)
    if phase is not None:
        description = f"{description} ({phase} the faults: {start:g}–{end:g} s)"
    if end <= start:
        return Check(description, False, f"the window {start:g}–{end:g} s is empty", kind)
    measure = expectation.measure
    if measure == "health":
        passed, observed = _health(expectation, evidence, start, end)
    elif measure in COUNTS:
        passed, observed = _count(expectation, _event_times(expectation, evidence), start, end)
    elif measure == "success_ratio":
        passed, observed = _ratio(expectation, evidence, start, end)
    elif measure == "latency":
        passed, observed = _latency(expectation, evidence, start, end)
    elif measure == "tick_lag":
        passed, observed = _tick_lag(expectation, evidence, start, end)
    elif measure == "exit_status":
        passed, observed = _exit_status(expectation, evidence)
    elif measure == "output":
        passed, observed = _output(expectation, evidence)
    else:
        passed, observed = _metric(expectation, evidence, end)
    return Check(description, passed, observed, kind)


def describe(expectation: Expectation) -> str:
    """A readable sentence for an expectation that has no ``expect:`` text of its own."""
    measure = expectation.measure
    if measure == "health":
        subject = f"system is {expectation.health}"
    elif measure == "token_issuances":
        subject = "token issuances"
    elif measure == "metric":
        subject = f"metric {expectation.metric}"
    elif measure == "exit_status":
        subject = f"exits with status {expectation.exit_status}"
    elif measure == "output":
        subject = f"times the output says {expectation.output!r}"
    else:
        selector = getattr(expectation, measure)
        fields = selector.model_dump(exclude_none=True) if selector is not None else {}
        shown = ", ".join(f"{key}={value}" for key, value in fields.items())
        subject = f"{measure.replace('_', ' ')}" + (f" [{shown}]" if shown else "")
        if measure == "latency":
            subject = f"{_rank(expectation)} latency of system calls" + (
                f" [{shown}]" if shown else ""
            )
        elif measure == "tick_lag":
            subject = f"{_rank(expectation)} lag of price updates" + (
                f" [{shown}]" if shown else ""
            )
    bounds = [
        f"{sign} {value:g}"
        for sign, value in (
            ("≤", expectation.at_most),
            ("≥", expectation.at_least),
            ("=", expectation.equals),
        )
        if value is not None
    ]
    text = f"{subject} {' and '.join(bounds)}".strip()
    if expectation.per is not None:
        text += f" per {expectation.per:g} s"
    if expectation.within is not None:
        anchor = f"after {expectation.after}" if expectation.after else f"since {expectation.since}"
        text += f" within {expectation.within:g} s {anchor}"
    return text


def _window(
    scenario: Scenario, expectation: Expectation, evidence: Evidence
) -> tuple[float, float]:
    if expectation.within is not None:
        if expectation.after is not None:
            anchor = _step(scenario, expectation.after).over_at(scenario.duration)
        else:
            assert expectation.since is not None
            anchor = _step(scenario, expectation.since).at
        return anchor, min(anchor + expectation.within, evidence.duration)
    start = expectation.from_ or 0.0
    end = expectation.until if expectation.until is not None else evidence.duration
    return start, min(end, evidence.duration)


def _step(scenario: Scenario, label: str) -> Step:
    return next(step for step in scenario.timeline if step.label == label)


# --- selecting events ----------------------------------------------------------------------


def broker_matches(selector: BrokerRequests, entry: Entry) -> bool:
    if selector.kind is not None and selector.kind != entry.kind:
        return False
    if selector.path is not None and not fnmatch.fnmatchcase(entry.path, selector.path):
        return False
    if selector.method is not None and selector.method.upper() != entry.method.upper():
        return False
    if selector.tr_id is not None and selector.tr_id.upper() != (entry.tr_id or "").upper():
        return False
    if selector.code is not None:
        if selector.code == "ok":
            if not entry.ok:
                return False
        elif selector.code not in (entry.code, entry.meaning):
            return False
    if selector.status is not None and selector.status != entry.status:
        return False
    return selector.faulted is None or selector.faulted == (entry.fault is not None)


def call_matches(selector: SystemCalls, call: SystemCall) -> bool:
    if selector.workload is not None and selector.workload != call.workload:
        return False
    if selector.operation is not None and selector.operation != call.operation:
        return False
    if selector.outcome is None:
        return True
    if selector.outcome == "failed":
        return call.outcome not in ("ok", "refused", "unfinished")
    return selector.outcome == call.outcome


def feed_events(selector: FeedEvents, journal: Sequence[FeedEntry]) -> list[FeedEntry]:
    """The journal entries every given field of ``selector`` matches (tr_id in any case;
    ``code`` the protocol's own or its meaning, whichever the protocol)."""
    wanted = selector.model_dump(exclude_none=True)  # once, not per entry
    tr_id = str(wanted.pop("tr_id", "")).upper()
    code = wanted.pop("code", None)
    return [
        entry
        for entry in journal
        if all(getattr(entry, key) == value for key, value in wanted.items())
        and (not tr_id or (entry.tr_id or "").upper() == tr_id)
        and (code is None or code in (entry.code, entry.meaning))
    ]


def matching(selector: Ticks | Halts | AlertsReceived, seen: Sequence[_Seen]) -> list[_Seen]:
    """What every given field of ``selector`` matches (price updates, halts, alerts)."""
    wanted = selector.model_dump(exclude_none=True)
    return [s for s in seen if all(getattr(s, key) == value for key, value in wanted.items())]


def is_token_issuance(entry: Entry) -> bool:
    return entry.kind == "token" and bool(entry.ok)


def _event_times(expectation: Expectation, evidence: Evidence) -> list[float]:
    if expectation.broker_requests is not None:
        selector = expectation.broker_requests
        return [e.at for e in evidence.journal if broker_matches(selector, e)]
    if expectation.token_issuances is not None:
        return [e.at for e in evidence.journal if is_token_issuance(e)]
    if expectation.feed_events is not None:
        events = expectation.feed_events
        return [e.at for e in feed_events(events, evidence.feed_journal)]
    if expectation.ticks is not None:
        return [t.at for t in matching(expectation.ticks, evidence.ticks)]
    if expectation.halts is not None:
        return [h.at for h in matching(expectation.halts, evidence.halts)]
    if expectation.alerts_received is not None:
        return [a.at for a in matching(expectation.alerts_received, evidence.alerts)]
    assert expectation.system_calls is not None
    return [c.at for c in evidence.calls if call_matches(expectation.system_calls, c)]


# --- measures ------------------------------------------------------------------------------


def _bounded(expectation: Expectation, value: float) -> bool:
    if expectation.equals is not None:
        return math.isclose(value, expectation.equals, rel_tol=1e-9, abs_tol=1e-9)
    if expectation.at_most is not None and value > expectation.at_most:
        return False
    return not (expectation.at_least is not None and value < expectation.at_least)


def _count(
    expectation: Expectation, times: Sequence[float], start: float, end: float
) -> tuple[bool, str]:
    inside = sorted(t for t in times if start <= t < end)
    if expectation.per is None:
        return _bounded(expectation, len(inside)), f"{len(inside)} in {start:g}–{end:g} s"
    # The bound must hold in every window of `per` seconds: check the fullest one (an upper
    # bound) and the emptiest one (a lower bound).
    per = expectation.per
    fullest, fullest_at = _fullest(inside, per)
    if not _bounded(expectation, fullest) and expectation.at_least is None:
        return False, f"{fullest} in the {per:g} s from t={fullest_at:.1f}"
    if expectation.at_least is not None or expectation.equals is not None:
        emptiest, emptiest_at = _emptiest(inside, per, start, end)
        if not _bounded(expectation, emptiest):
            return False, f"{emptiest} in the {per:g} s from t={emptiest_at:.1f}"
        if not _bounded(expectation, fullest):
            return False, f"{fullest} in the {per:g} s from t={fullest_at:.1f}"
    return True, f"at most {fullest} in any {per:g} s (fullest from t={fullest_at:.1f})"


def _fullest(times: Sequence[float], per: float) -> tuple[int, float]:
    best, best_at, left = 0, times[0] if times else 0.0, 0
    for right, t in enumerate(times):
        while t - times[left] >= per:
            left += 1
        if right - left + 1 > best:
            best, best_at = right - left + 1, times[left]
    return best, best_at


def _emptiest(times: Sequence[float], per: float, start: float, end: float) -> tuple[int, float]:
    if end - start < per:
        return len(times), start
    # The emptiest window starts at the window's start or just after an event.
    best, best_at = bisect.bisect_left(times, start + per), start
    for t in times:
        if t + per > end:
            break
        count = bisect.bisect_right(times, t + per) - bisect.bisect_right(times, t)
        if count < best:
            best, best_at = count, t
    return best, best_at


def _health(
    expectation: Expectation, evidence: Evidence, start: float, end: float
) -> tuple[bool, str]:
    wanted = expectation.health
    # The window's end is open, except at the very end of the run (its last sample).
    samples = [
        s for s in evidence.samples if start <= s.at < end or s.at == end == evidence.duration
    ]
    if not samples:
        return False, f"no health sample in {start:g}–{end:g} s"
    if expectation.within is not None:
        first = next((s for s in samples if s.health.state == wanted), None)
        if first is None:
            last = samples[-1].health
            why = f" ({'; '.join(last.reasons)})" if last.reasons else ""
            return False, f"never {wanted} within {end - start:g} s; last {last.state}{why}"
        anchor = f"after {expectation.after}" if expectation.after else f"since {expectation.since}"
        return True, f"{wanted} at t={first.at:.1f}, {first.at - start:.1f} s {anchor}"
    off = [s for s in samples if s.health.state != wanted]
    if off:
        s = off[0]
        why = f" ({'; '.join(s.health.reasons)})" if s.health.reasons else ""
        return (
            False,
            f"{s.health.state} at t={s.at:.1f}{why}; "
            f"{len(off)} of {len(samples)} samples not {wanted}",
        )
    return True, f"{wanted} in all {len(samples)} samples"


def _calls_in(
    selector: SystemCalls, evidence: Evidence, start: float, end: float
) -> list[SystemCall]:
    return [c for c in evidence.calls if start <= c.at < end and call_matches(selector, c)]


def _ratio(
    expectation: Expectation, evidence: Evidence, start: float, end: float
) -> tuple[bool, str]:
    assert expectation.success_ratio is not None
    calls = _calls_in(expectation.success_ratio, evidence, start, end)
    if not calls:
        return False, f"no system calls in {start:g}–{end:g} s to take a ratio of"
    ok = sum(1 for c in calls if c.outcome == "ok")
    ratio = ok / len(calls)
    failures = _outcomes(c.outcome for c in calls if c.outcome != "ok")
    detail = f" (others: {failures})" if failures else ""
    return _bounded(expectation, ratio), f"{ratio:.3f} ({ok}/{len(calls)} ok){detail}"


def _latency(
    expectation: Expectation, evidence: Evidence, start: float, end: float
) -> tuple[bool, str]:
    assert expectation.latency is not None
    calls = _calls_in(expectation.latency, evidence, start, end)
    if not calls:
        return False, f"no system calls in {start:g}–{end:g} s to time"
    latencies = [math.inf if c.latency is None else c.latency for c in calls]
    value = _ranked(expectation, latencies)
    unfinished = sum(1 for c in calls if c.latency is None)
    shown = "unfinished" if math.isinf(value) else f"{value:.2f} s"
    extra = f" ({unfinished} of {len(calls)} calls unfinished)" if unfinished else ""
    return _bounded(
        expectation, value
    ), f"{_rank(expectation)} {shown} over {len(calls)} calls{extra}"


def _tick_lag(
    expectation: Expectation, evidence: Evidence, start: float, end: float
) -> tuple[bool, str]:
    assert expectation.tick_lag is not None
    selector = expectation.tick_lag
    lags = [t.lag for t in matching(selector, evidence.ticks) if start <= t.at < end]
    if not lags:
        return False, f"no price updates received in {start:g}–{end:g} s to time"
    value = _ranked(expectation, lags)
    return _bounded(expectation, value), (
        f"{_rank(expectation)} {value:.3f} s over {len(lags)} price updates"
    )


def _ranked(expectation: Expectation, values: Sequence[float]) -> float:
    """The ``percentile`` rank of ``values`` (by default the largest)."""
    return percentile(values, (expectation.percentile or 100.0) / 100)


def _metric(expectation: Expectation, evidence: Evidence, end: float) -> tuple[bool, str]:
    name = expectation.metric
    assert name is not None
    metrics = evidence.final_metrics
    if end < evidence.duration:
        earlier = [s for s in evidence.samples if s.at <= end]
        metrics = earlier[-1].metrics if earlier else {}
    if name not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        return False, f"the system has no metric {name!r}; it has: {known}"
    value = metrics[name]
    return _bounded(expectation, value), f"{name} = {value:g} at t={end:g}"


def _exit_status(expectation: Expectation, evidence: Evidence) -> tuple[bool, str]:
    launched = evidence.launched
    assert launched is not None  # the model allows this measure only with 'start'
    if launched.status is None:
        return False, f"still running after {launched.deadline:g} s; stopped"
    observed = f"exited with status {launched.status} after {launched.seconds:.1f} s"
    return launched.status == expectation.exit_status, observed


# How much of the output a failed output check quotes.
_QUOTED_CHARS = 400


def _output(expectation: Expectation, evidence: Evidence) -> tuple[bool, str]:
    launched = evidence.launched
    assert launched is not None
    assert expectation.output is not None
    text = " ".join(expectation.output.split())
    if launched.port is not None:
        text = text.replace("{port}", str(launched.port))
    count = launched.said.count(text)
    passed = _bounded(expectation, count)
    observed = f"said {text!r} {count} time(s)"
    if not passed:
        observed += f"; it printed: {launched.quoted(_QUOTED_CHARS)}"
    return passed, observed


def _rank(expectation: Expectation) -> str:
    return "slowest" if expectation.percentile in (None, 100) else f"p{expectation.percentile:g}"


def _outcomes(outcomes: Any) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
