"""RateLimiter on virtual time: free under the budget, never over it in any window, fair."""

from __future__ import annotations

import asyncio

import pytest

from system.broker import RateLimiter
from tests.unit.broker.conftest import now

pytestmark = pytest.mark.looptime


def most_in_any_window(stamps: list[float], window: float) -> int:
    """The largest number of stamps inside any half-open window [t, t + window)."""
    ordered = sorted(stamps)
    best = 0
    for i, start in enumerate(ordered):
        inside = [t for t in ordered[i:] if t < start + window]
        best = max(best, len(inside))
    return best


async def acquire_all(limiter: RateLimiter, count: int) -> list[float]:
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(now())

    await asyncio.gather(*(one() for _ in range(count)))
    return stamps


async def test_acquire_under_the_limit_does_not_wait() -> None:
    limiter = RateLimiter(18)
    started = now()
    for _ in range(18):
        await limiter.acquire()
    assert now() == started


async def test_one_over_the_budget_waits_a_window_plus_the_margin() -> None:
    limiter = RateLimiter(18, margin_s=0.05)
    await acquire_all(limiter, 18)
    await limiter.acquire()
    assert now() == pytest.approx(1.05)


@pytest.mark.parametrize(("budget", "count"), [(18, 50), (1, 5), (5, 23), (2.5, 9)])
async def test_concurrent_acquirers_never_exceed_the_budget_in_any_window(
    budget: float, count: int
) -> None:
    limiter = RateLimiter(budget, margin_s=0.05)
    stamps = await acquire_all(limiter, count)
    assert len(stamps) == count
    capacity = int(budget)
    # The broker counts per second: at most `capacity` in any 1 s window, even with
    # arrival jitter up to the margin.
    assert most_in_any_window(stamps, 1.0 + 0.05 - 1e-5) <= capacity
    # ...and the budget is used, not wasted: waves of `capacity` every window + margin.
    waves = -(-count // capacity) - 1
    assert max(stamps) == pytest.approx(waves * 1.05)


async def test_a_budget_below_one_per_second_spaces_single_requests() -> None:
    limiter = RateLimiter(0.5, margin_s=0.05)
    stamps = await acquire_all(limiter, 3)
    assert stamps == pytest.approx([0.0, 2.05, 4.1])


async def test_waiters_are_served_in_arrival_order() -> None:
    limiter = RateLimiter(2)
    served: list[int] = []

    async def one(index: int) -> None:
        await limiter.acquire()
        served.append(index)

    tasks = []
    for index in range(12):
        tasks.append(asyncio.create_task(one(index)))
        await asyncio.sleep(0.01)  # arrive in index order
    await asyncio.gather(*tasks)
    assert served == list(range(12))


async def test_two_hundred_waiters_do_not_thunder(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def counting_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr("system.broker.ratelimit.asyncio.sleep", counting_sleep)
    limiter = RateLimiter(18)
    await acquire_all(limiter, 200)
    # Only the head of the queue sleeps, once per slot it waits for: a herd re-checking on
    # every freed slot would sleep thousands of times.
    assert len(sleeps) <= 200 - 18


async def test_penalize_holds_everyone_back_even_with_slots_free() -> None:
    limiter = RateLimiter(18)
    await limiter.acquire()
    limiter.penalize(3.0)
    assert limiter.blocked_until == pytest.approx(3.0)
    stamps = await acquire_all(limiter, 3)
    assert min(stamps) == pytest.approx(3.0)


async def test_penalize_during_a_wait_extends_it() -> None:
    limiter = RateLimiter(1, margin_s=0.0)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.5)
    limiter.penalize(2.0)  # until 2.5, later than the 1.0 the waiter was sleeping towards
    await waiter
    assert now() == pytest.approx(2.5)


async def test_penalize_never_shortens_an_earlier_penalty() -> None:
    limiter = RateLimiter(18)
    limiter.penalize(5.0)
    limiter.penalize(1.0)
    assert limiter.blocked_until == pytest.approx(5.0)


async def test_a_cancelled_waiter_does_not_use_a_slot_or_block_the_queue() -> None:
    limiter = RateLimiter(1, margin_s=0.0)
    await limiter.acquire()
    doomed = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.1)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await limiter.acquire()
    assert now() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "args",
    [
        {"budget_per_second": 0},
        {"budget_per_second": 5, "window_s": 0},
        {"budget_per_second": 5, "margin_s": -1},
    ],
)
def test_nonsense_limits_are_refused(args: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RateLimiter needs"):
        RateLimiter(**args)
