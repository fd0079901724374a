"""Jittered exponential backoff, shared by the broker client's read retries and the feed's
reconnects, so both spread their retries the same way and are reproducible from a seed."""

from __future__ import annotations

import random

# 2**60 × any sane base is far beyond any cap; the bound keeps a reconnect loop that has
# failed for hours from overflowing a float.
_MAX_DOUBLINGS = 60


def jittered_backoff(attempt: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before retry ``attempt`` (1-based): ``base_s`` doubled per attempt, capped at
    ``max_s``, then jittered into [50 %, 100 %] of that by ``rng``.

    "Equal jitter": clients that failed together spread out, and none retries immediately.
    """
    doublings = min(max(attempt - 1, 0), _MAX_DOUBLINGS)
    ceiling = min(max_s, base_s * 2.0**doublings)
    return ceiling * rng.uniform(0.5, 1.0)
