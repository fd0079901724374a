"""How often the half-written probe looks: closely around database faults, rarely away."""

from __future__ import annotations

import pytest

from harness.stored import BUSY_EVERY_S, QUIET_EVERY_S, SETTLE_S, HalfWrittenProbe


@pytest.mark.parametrize(
    ("at", "every"),
    [
        (0.0, QUIET_EVERY_S),  # long before the fault
        (98.0, 2.0),  # wakes for the fault's start
        (100.0, BUSY_EVERY_S),  # during it
        (130.0 + SETTLE_S, BUSY_EVERY_S),  # still settling
        (130.0 + SETTLE_S + 1, QUIET_EVERY_S),  # after
    ],
)
def test_the_probe_looks_closely_only_around_database_faults(at: float, every: float) -> None:
    probe = HalfWrittenProbe("postgresql://unused", 0.0, [(100.0, 130.0)])
    assert probe.every_s(at) == every
