"""StopConditions: late market data and failures in a row halt trading."""

from __future__ import annotations

import math

import pytest

from system.trading.risk import ALLOWED, Reason, Refused, StopConditions


def test_latency_of_exactly_the_maximum_passes_and_any_more_halts() -> None:
    stop = StopConditions(max_source_latency_s=1.0, max_consecutive_failures=None)
    assert stop.observe_latency(1.0, at=10.0) is None
    halt = stop.observe_latency(1.001, at=11.0)
    assert halt is not None
    assert (halt.reason, halt.at, halt.automatic) == (Reason.SOURCE_LATENCY, 11.0, True)
    assert "1.001" in halt.detail


def test_the_maximum_failure_in_a_row_halts_and_one_fewer_does_not() -> None:
    stop = StopConditions(max_source_latency_s=None, max_consecutive_failures=3)
    assert stop.record_execution(False, at=1.0) is None
    assert stop.record_execution(False, at=2.0) is None
    halt = stop.record_execution(False, at=3.0)
    assert halt is not None
    assert (halt.reason, halt.at) == (Reason.CONSECUTIVE_FAILURES, 3.0)


def test_a_success_resets_the_failure_count() -> None:
    stop = StopConditions(max_source_latency_s=None, max_consecutive_failures=3)
    stop.record_execution(False, at=1.0)
    stop.record_execution(False, at=2.0)
    stop.record_execution(True, at=3.0)
    assert stop.consecutive_failures == 0
    assert stop.record_execution(False, at=4.0) is None
    assert stop.record_execution(False, at=5.0) is None
    assert not stop.halted


def test_a_halted_guard_refuses_until_released_and_the_release_resets_the_count() -> None:
    stop = StopConditions(max_source_latency_s=None, max_consecutive_failures=2)
    stop.record_execution(False, at=1.0)
    stop.record_execution(False, at=2.0)
    refused = stop.check()
    assert isinstance(refused, Refused)
    assert (refused.guard, refused.reason) == ("stop-conditions", Reason.CONSECUTIVE_FAILURES)
    assert stop.release() is True
    assert stop.check() is ALLOWED
    assert stop.consecutive_failures == 0
    assert stop.record_execution(False, at=3.0) is None  # counting starts afresh
    assert stop.release() is False


def test_the_first_halt_stands() -> None:
    stop = StopConditions(max_source_latency_s=1.0, max_consecutive_failures=1)
    first = stop.observe_latency(5.0, at=1.0)
    assert stop.record_execution(False, at=2.0) is None
    assert stop.halt == first


def test_without_conditions_nothing_halts() -> None:
    stop = StopConditions(max_source_latency_s=None, max_consecutive_failures=None)
    assert stop.observe_latency(3600.0, at=1.0) is None
    for n in range(100):
        assert stop.record_execution(False, at=float(n)) is None
    assert stop.check() is ALLOWED


def test_a_nan_latency_is_an_error_not_a_pass() -> None:
    stop = StopConditions(max_source_latency_s=1.0, max_consecutive_failures=None)
    with pytest.raises(ValueError, match="NaN"):
        stop.observe_latency(math.nan, at=1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_latency_limit_must_be_a_finite_positive_number(bad: float) -> None:
    with pytest.raises(ValueError, match="max_source_latency_s"):
        StopConditions(max_source_latency_s=bad, max_consecutive_failures=None)
