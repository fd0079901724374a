"""jittered_backoff: doubling from the base, capped, jittered into [50 %, 100 %], seeded."""

from __future__ import annotations

import random

import pytest

from system.broker.backoff import jittered_backoff


class Fixed(random.Random):
    """An rng whose uniform(a, b) always draws the point ``at`` (0 → a, 1 → b)."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.at


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (6, 5.0)]
)
def test_the_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    top = jittered_backoff(attempt, base_s=0.5, max_s=5.0, rng=Fixed(1.0))
    bottom = jittered_backoff(attempt, base_s=0.5, max_s=5.0, rng=Fixed(0.0))
    assert (top, bottom) == (ceiling, ceiling / 2)


def test_the_same_seed_gives_the_same_delays() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [jittered_backoff(n, base_s=1.0, max_s=8.0, rng=rng) for n in range(1, 8)]

    assert delays(3) == delays(3)
    assert delays(3) != delays(4)


def test_thousands_of_attempts_stay_at_the_cap() -> None:
    assert jittered_backoff(5000, base_s=1.0, max_s=30.0, rng=Fixed(1.0)) == 30.0
