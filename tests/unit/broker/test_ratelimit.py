"""RateLimiter on virtual time: free under the budget, never over it in any window, fair.

Most tests model instant requests (released as soon as acquired), where a slot's span is a
single moment; the span tests below hold slots open like a slow round trip does.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

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


async def send(limiter: RateLimiter, round_trip_s: float = 0.0) -> float:
    """Acquire, "send" for ``round_trip_s``, release; the loop time at which it started."""
    slot = await limiter.acquire()
    started = now()
    if round_trip_s:
        await asyncio.sleep(round_trip_s)
    limiter.release(slot)
    return started


async def acquire_all(limiter: RateLimiter, count: int) -> list[float]:
    stamps: list[float] = []

    async def one() -> None:
        stamps.append(await send(limiter))

    await asyncio.gather(*(one() for _ in range(count)))
    return stamps


async def test_acquire_under_the_limit_does_not_wait() -> None:
    limiter = RateLimiter(18)
    started = now()
    for _ in range(18):
        await send(limiter)
    assert now() == started


async def test_one_over_the_budget_waits_a_window_plus_the_margin() -> None:
    limiter = RateLimiter(18, margin_s=0.05)
    await acquire_all(limiter, 18)
    await send(limiter)
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
        await send(limiter)
        served.append(index)

    tasks = []
    for index in range(12):
        tasks.append(asyncio.create_task(one(index)))
        await asyncio.sleep(0.01)  # arrive in index order
    await asyncio.gather(*tasks)
    assert served == list(range(12))


async def test_two_hundred_waiters_do_not_thunder(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float | None] = []
    real_wait_for = asyncio.wait_for

    async def counting_wait_for(awaitable: Any, limit: float | None) -> Any:
        waits.append(limit)
        return await real_wait_for(awaitable, limit)

    monkeypatch.setattr("system.broker.ratelimit.asyncio.wait_for", counting_wait_for)
    limiter = RateLimiter(18)
    await acquire_all(limiter, 200)
    # Only the head of the queue waits, once per slot it waits for: a herd re-checking on
    # every freed slot would wait thousands of times.
    assert 0 < len(waits) <= 200 - 18


async def test_penalize_holds_everyone_back_even_with_slots_free() -> None:
    limiter = RateLimiter(18)
    await send(limiter)
    limiter.penalize(3.0)
    assert limiter.blocked_until == pytest.approx(3.0)
    stamps = await acquire_all(limiter, 3)
    assert min(stamps) == pytest.approx(3.0)


async def test_penalize_during_a_wait_extends_it() -> None:
    limiter = RateLimiter(1, margin_s=0.0)
    await send(limiter)
    waiter = asyncio.create_task(send(limiter))
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
    await send(limiter)
    doomed = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.1)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await send(limiter)
    assert now() == pytest.approx(1.0)


async def test_a_slot_counts_until_a_window_after_its_answer() -> None:
    # The broker may have counted a slow request at any moment until its answer came back,
    # so the slot is only free a full window after that answer, not after the send.
    limiter = RateLimiter(2, margin_s=0.0)
    await asyncio.gather(send(limiter, round_trip_s=0.4), send(limiter, round_trip_s=0.4))
    assert await send(limiter) == pytest.approx(1.4)


async def test_with_every_slot_in_flight_the_next_waits_for_an_answer() -> None:
    limiter = RateLimiter(2, margin_s=0.0, transit_s=math.inf)
    slow = [asyncio.create_task(send(limiter, round_trip_s=5.0)) for _ in range(2)]
    await asyncio.sleep(0)
    assert await send(limiter) == pytest.approx(6.0)
    await asyncio.gather(*slow)


async def test_an_unanswered_request_counts_as_arrived_after_the_transit_bound() -> None:
    # A hanging broker must not hold the budget until the client's timeout: after
    # transit_s the request has surely arrived, and its slot frees a window later.
    limiter = RateLimiter(2, margin_s=0.0, transit_s=1.0)
    slow = [asyncio.create_task(send(limiter, round_trip_s=30.0)) for _ in range(2)]
    await asyncio.sleep(0)
    assert await send(limiter) == pytest.approx(2.0)
    await asyncio.gather(*slow)


async def test_an_answer_frees_the_slot_of_a_waiter_sooner_than_the_transit_bound() -> None:
    limiter = RateLimiter(1, margin_s=0.0, transit_s=10.0)
    first = asyncio.create_task(send(limiter, round_trip_s=0.3))
    await asyncio.sleep(0)
    assert await send(limiter) == pytest.approx(1.3)
    await first


@pytest.mark.parametrize("seed", range(5))
async def test_no_window_sees_more_than_the_budget_whatever_the_round_trips(seed: int) -> None:
    # A request arrives somewhere in [sent, answered], and no later than transit_s after
    # sending. Put every arrival at its worst moment (either end, or a mix) and the broker
    # still never counts more than the budget in a window.
    import random

    rng = random.Random(seed)
    limiter = RateLimiter(5, margin_s=0.0, transit_s=1.0)
    spans: list[tuple[float, float]] = []

    async def one() -> None:
        await asyncio.sleep(rng.uniform(0, 3))
        trip = rng.choice([0.0, 0.01, 0.3, 0.9, 2.0, 8.0])
        started = await send(limiter, round_trip_s=trip)
        spans.append((started, min(started + trip, started + 1.0)))

    await asyncio.gather(*(one() for _ in range(60)))
    for pick in (0, 1):
        arrivals = [span[pick] for span in spans]
        assert most_in_any_window(arrivals, 1.0 - 1e-6) <= 5
    # Mixed worst cases: a slow request arriving late beside fast ones arriving early.
    late_slow = [end if end - start > 0.5 else start for start, end in spans]
    assert most_in_any_window(late_slow, 1.0 - 1e-6) <= 5


async def test_a_refunded_slot_frees_at_once() -> None:
    limiter = RateLimiter(1, margin_s=0.0)
    slot = await limiter.acquire()
    limiter.refund(slot)
    assert await send(limiter) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "args",
    [
        {"budget_per_second": 0},
        {"budget_per_second": 5, "window_s": 0},
        {"budget_per_second": 5, "margin_s": -1},
        {"budget_per_second": 5, "transit_s": -1},
    ],
)
def test_nonsense_limits_are_refused(args: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RateLimiter needs"):
        RateLimiter(**args)
