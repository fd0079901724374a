"""How often the half-written probe looks: closely around database faults, rarely away."""

from __future__ import annotations

import pytest

from harness.stored import BUSY_EVERY_S, QUIET_EVERY_S, SETTLE_S, HalfWrittenProbe


@pytest.mark.parametrize(
    ("at", "every"),
    [
        (0.0, QUIET_EVERY_S),  # long before the fault
        (998.0, 2.0),  # wakes for the fault's start
        (1000.0, BUSY_EVERY_S),  # during it
        (1030.0 + SETTLE_S, BUSY_EVERY_S),  # still settling
        (1030.0 + SETTLE_S + 1, QUIET_EVERY_S),  # after
    ],
)
def test_the_probe_looks_closely_only_around_database_faults(at: float, every: float) -> None:
    probe = HalfWrittenProbe("postgresql://unused", 0.0, [(1000.0, 1030.0)])
    assert probe.every_s(at) == every


def test_just_before_a_fault_the_probe_still_sleeps_long_enough_to_move_the_clock() -> None:
    # A sleep of a hair could leave the loop's clock where it was: the probe would wake at
    # the same moment forever (a livelock on virtual time).
    probe = HalfWrittenProbe("postgresql://unused", 0.0, [(100.0, 130.0)])
    assert probe.every_s(100.0 - 1e-12) == BUSY_EVERY_S
