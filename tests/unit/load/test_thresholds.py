"""The load tier's verdict (load/thresholds.py) on made-up Locust statistics."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from load.thresholds import ThresholdError, Thresholds, check


@dataclass
class Stat:
    """The part of Locust's ``StatsEntry`` the check reads."""

    name: str
    method: str
    num_requests: int
    num_failures: int = 0
    p95: int = 10

    def get_response_time_percentile(self, percent: float) -> int:
        assert percent == 0.95
        return self.p95


def test_a_run_within_its_thresholds_passes() -> None:
    verdict = check(
        [Stat("/health", "GET", 100, p95=40), Stat("WS ping round trip", "WS", 50, p95=3)],
        Thresholds(),
        required=["GET /health", "WS ping round trip"],
    )
    assert verdict.passed
    assert [row[0] for row in verdict.rows] == ["GET /health", "WS ping round trip"]


def test_a_slow_request_type_fails_on_its_own_limit() -> None:
    verdict = check([Stat("/health", "GET", 100, p95=900)], Thresholds())
    assert not verdict.passed
    assert verdict.problems == ["GET /health: p95 900 ms is over its limit of 500 ms"]


def test_too_many_failures_fail_the_run() -> None:
    verdict = check([Stat("/api/quotes/[code]", "GET", 100, num_failures=2)], Thresholds())
    assert verdict.problems == ["2 of 100 requests failed (2.00%), over the limit of 1.00%"]


def test_a_request_type_never_measured_fails_the_run() -> None:
    verdict = check([Stat("/health", "GET", 10)], Thresholds(), required=["WS ping round trip"])
    assert verdict.problems == [
        "WS ping round trip: never measured; its users did not run (see the log above)"
    ]


def test_a_run_that_made_no_request_fails() -> None:
    verdict = check([Stat("/health", "GET", 0)], Thresholds())
    assert "no request was made at all" in verdict.problems[0]


def test_the_environment_overrides_the_limits() -> None:
    thresholds = Thresholds.from_env(
        {
            "SQUALL_LOAD_MAX_FAIL_RATIO": "0.05",
            "SQUALL_LOAD_P95_MS": "GET /health=100, WS ping round trip=20",
            "SQUALL_LOAD_P95_DEFAULT_MS": "750",
        }
    )
    assert thresholds.max_fail_ratio == 0.05
    assert thresholds.limit("GET /health") == 100
    assert thresholds.limit("WS ping round trip") == 20
    assert thresholds.limit("GET /something/else") == 750
    assert thresholds.limit("POST /api/orders") == 3000  # the default stays


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"SQUALL_LOAD_MAX_FAIL_RATIO": "2"}, "ratio from 0 to 1"),
        ({"SQUALL_LOAD_MAX_FAIL_RATIO": "few"}, "ratio from 0 to 1"),
        ({"SQUALL_LOAD_P95_MS": "GET /health"}, "is not NAME=MILLISECONDS"),
        ({"SQUALL_LOAD_P95_MS": "GET /health=fast"}, "positive number of ms"),
        ({"SQUALL_LOAD_P95_DEFAULT_MS": "-1"}, "positive number of ms"),
    ],
)
def test_a_bad_setting_names_its_variable(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ThresholdError, match=says):
        Thresholds.from_env(environ)
