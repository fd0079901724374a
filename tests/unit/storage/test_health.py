"""HealthMonitor: the storage health rules, driven by events and loop times alone."""

from __future__ import annotations

import pytest

from system.storage import HealthMonitor, StorageHealth

WINDOW = 5.0


def started(at: float = 0.0) -> HealthMonitor:
    monitor = HealthMonitor(error_window_s=WINDOW, now=at)
    monitor.started(at)
    return monitor


def test_unhealthy_until_started_then_healthy() -> None:
    monitor = HealthMonitor(error_window_s=WINDOW, now=0.0)
    assert monitor.health == StorageHealth("unhealthy", "the pool is not started", 0.0)
    assert not monitor.server_unreachable
    assert monitor.started(1.0) == StorageHealth("healthy", "", 1.0)


def test_a_refused_connection_makes_it_unhealthy_until_one_works() -> None:
    monitor = started()
    change = monitor.unreachable(10.0, "connecting failed (ConnectionRefusedError)")
    reason = "cannot connect to the database: connecting failed (ConnectionRefusedError)"
    assert change == StorageHealth("unhealthy", reason, 10.0)
    assert monitor.server_unreachable
    # Still down: more failures change the reason, not the state or its start.
    assert monitor.unreachable(11.0, "the health probe failed (timed out)") is None
    assert monitor.health.since == 10.0
    assert monitor.unreachable_because == "the health probe failed (timed out)"
    # Time alone does not heal an outage: only a success does.
    assert monitor.refresh(100.0) is None
    assert monitor.health.state == "unhealthy"


def test_after_an_outage_it_is_degraded_for_the_window_then_healthy() -> None:
    monitor = started()
    monitor.unreachable(10.0, "connecting failed")
    change = monitor.succeeded(12.0)
    assert change is not None
    assert (change.state, change.since) == ("degraded", 12.0)
    assert change.reason == "connecting failed 2.0 s ago"
    assert monitor.next_change_at() == 10.0 + WINDOW
    assert monitor.refresh(14.9) is None
    assert monitor.refresh(15.0) == StorageHealth("healthy", "", 15.0)
    assert monitor.next_change_at() is None


def test_at_the_moment_next_change_at_names_the_failure_has_left_the_window() -> None:
    # A failure at 0.002192 s with a 0.5 s window: in floats, (0.002192 + 0.5) - 0.002192 is
    # 0.49999999999999994, a hair under the window. Judged that way, the verdict would stand
    # at the moment next_change_at names, and the pool's timer would be re-armed for that
    # moment for good (on virtual time the clock never moves on while a timer is due).
    monitor = HealthMonitor(error_window_s=0.5, now=0.0)
    monitor.started(0.0)
    monitor.failed(0.002192, "a statement ran longer than 1.0 s")
    expiry = monitor.next_change_at()
    assert expiry is not None
    assert monitor.refresh(expiry) == StorageHealth("healthy", "", expiry)


def test_a_failed_operation_degrades_without_an_outage() -> None:
    monitor = started()
    change = monitor.failed(3.0, "a connection was lost (ConnectionDoesNotExistError)")
    assert change is not None
    assert change.state == "degraded"
    assert not monitor.server_unreachable
    # Successes do not erase a recent failure: the window does.
    assert monitor.succeeded(4.0) is None
    assert monitor.health.state == "degraded"
    assert monitor.refresh(8.0) is not None
    assert monitor.health.state == "healthy"


def test_each_failure_restarts_the_window() -> None:
    monitor = started()
    monitor.failed(1.0, "first")
    monitor.failed(4.0, "second")
    assert monitor.refresh(7.0) is None
    assert monitor.health.reason == "second 3.0 s ago"
    assert monitor.next_change_at() == 9.0


def test_waiting_callers_mean_saturation_while_they_wait() -> None:
    monitor = started()
    change = monitor.saturation(2.0, 3)
    assert change == StorageHealth(
        "degraded", "pool saturated: 3 callers are waiting for a connection", 2.0
    )
    assert monitor.next_change_at() is None  # only the waiters leaving ends it
    assert monitor.saturation(2.5, 1) is None
    assert monitor.health.reason == "pool saturated: 1 caller is waiting for a connection"
    assert monitor.saturation(3.0, 0) == StorageHealth("healthy", "", 3.0)


def test_an_outage_outranks_saturation_and_saturation_outranks_old_failures() -> None:
    monitor = started()
    monitor.failed(1.0, "a statement ran longer than 5.0 s")
    monitor.saturation(1.5, 2)
    assert monitor.health.reason.startswith("pool saturated")
    monitor.unreachable(2.0, "refused")
    assert monitor.health.state == "unhealthy"
    monitor.saturation(2.1, 0)
    assert monitor.health.state == "unhealthy"


def test_closed_is_unhealthy_for_good() -> None:
    monitor = started()
    change = monitor.closed(9.0)
    assert change == StorageHealth("unhealthy", "the pool is closed", 9.0)
    assert monitor.succeeded(10.0) is None
    assert monitor.health.state == "unhealthy"
    assert not monitor.server_unreachable
    assert monitor.unreachable_because is None


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="error_window_s > 0"):
        HealthMonitor(error_window_s=0, now=0.0)
