"""What a load run must hold, checked when Locust quits (``check``), with the verdict printed
and the exit code set: the **fail ratio** over all requests, and the **95th percentile
response time** of each request type.

Defaults are below; the environment overrides them:

- ``SQUALL_LOAD_MAX_FAIL_RATIO`` — e.g. ``0.01`` (1 % of requests may fail);
- ``SQUALL_LOAD_P95_MS`` — per request type, e.g. ``"GET /health=200,WS ping round trip=300"``;
- ``SQUALL_LOAD_P95_DEFAULT_MS`` — for request types not named.

A request type the run was meant to exercise but never measured (``required``) fails the run
too: a user class that never got going must not pass as "no failures".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

MAX_FAIL_RATIO = 0.01
P95_DEFAULT_MS = 2000.0
P95_MS: dict[str, float] = {
    "GET /health": 500.0,
    "GET /api/quotes/[code]": 2000.0,
    "POST /api/orders": 3000.0,
    "GET /api/kill-switch": 500.0,
    "POST /api/kill-switch": 1000.0,
    "WS connect": 2000.0,
    "WS subscribe": 1000.0,
    "WS ping round trip": 500.0,
}


class ThresholdError(ValueError):
    """A threshold setting is wrong; the text names the variable."""


class Entry(Protocol):
    """What the check reads of one of Locust's ``StatsEntry``."""

    @property
    def name(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def num_requests(self) -> int: ...

    @property
    def num_failures(self) -> int: ...

    def get_response_time_percentile(self, percent: float) -> int: ...


@dataclass(frozen=True)
class Thresholds:
    max_fail_ratio: float = MAX_FAIL_RATIO
    p95_ms: Mapping[str, float] = field(default_factory=lambda: dict(P95_MS))
    p95_default_ms: float = P95_DEFAULT_MS

    def limit(self, key: str) -> float:
        return self.p95_ms.get(key, self.p95_default_ms)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Thresholds:
        env = os.environ if environ is None else environ
        p95 = dict(P95_MS)
        for part in env.get("SQUALL_LOAD_P95_MS", "").split(","):
            if not part.strip():
                continue
            name, sep, value = part.rpartition("=")
            if not sep or not name.strip():
                raise ThresholdError(
                    f"SQUALL_LOAD_P95_MS: {part.strip()!r} is not NAME=MILLISECONDS, e.g. "
                    '"GET /health=200"'
                )
            p95[name.strip()] = _milliseconds("SQUALL_LOAD_P95_MS", value)
        return cls(
            max_fail_ratio=_ratio(env.get("SQUALL_LOAD_MAX_FAIL_RATIO", ""), MAX_FAIL_RATIO),
            p95_ms=p95,
            p95_default_ms=_milliseconds(
                "SQUALL_LOAD_P95_DEFAULT_MS", env.get("SQUALL_LOAD_P95_DEFAULT_MS", "")
            )
            or P95_DEFAULT_MS,
        )


@dataclass(frozen=True)
class Verdict:
    rows: list[tuple[str, int, int, float, float, bool]]  # key, requests, failures, p95, limit, ok
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def key_of(entry: Entry) -> str:
    """How a request type is named here: ``GET /health``; custom ones (WS) by name alone."""
    if entry.method in ("", "WS"):
        return entry.name
    return f"{entry.method} {entry.name}"


def check(
    entries: Iterable[Entry], thresholds: Thresholds, required: Iterable[str] = ()
) -> Verdict:
    rows: list[tuple[str, int, int, float, float, bool]] = []
    problems: list[str] = []
    requests = failures = 0
    seen: set[str] = set()
    for entry in sorted(entries, key=key_of):
        if entry.num_requests == 0:
            continue
        key = key_of(entry)
        seen.add(key)
        requests += entry.num_requests
        failures += entry.num_failures
        p95 = float(entry.get_response_time_percentile(0.95))
        limit = thresholds.limit(key)
        ok = p95 <= limit
        rows.append((key, entry.num_requests, entry.num_failures, p95, limit, ok))
        if not ok:
            problems.append(f"{key}: p95 {p95:.0f} ms is over its limit of {limit:.0f} ms")
    for key in sorted(set(required) - seen):
        problems.append(f"{key}: never measured; its users did not run (see the log above)")
    if requests == 0:
        problems.append("no request was made at all: is the host right and serving?")
    ratio = failures / requests if requests else 0.0
    if ratio > thresholds.max_fail_ratio:
        problems.append(
            f"{failures} of {requests} requests failed ({ratio:.2%}), over the limit of "
            f"{thresholds.max_fail_ratio:.2%}"
        )
    return Verdict(rows, problems)


def _ratio(raw: str, default: float) -> float:
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ThresholdError(
            f"SQUALL_LOAD_MAX_FAIL_RATIO={raw!r} must be a ratio from 0 to 1, e.g. 0.01"
        )
    return value


def _milliseconds(variable: str, raw: str) -> float:
    if not raw.strip():
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ThresholdError(f"{variable}: {raw.strip()!r} must be a positive number of ms")
    return value
