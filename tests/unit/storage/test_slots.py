"""Slots: admission to the pool, its waiting count, FIFO hand-over, close and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from system.storage.slots import Slots


class Closed(Exception):
    pass


async def test_free_slots_are_taken_at_once_and_counted() -> None:
    slots = Slots(2)
    await slots.acquire()
    await slots.acquire()
    assert (slots.in_use, slots.waiting) == (2, 0)
    slots.release()
    assert slots.in_use == 1


async def test_waiters_are_served_first_come_first_served() -> None:
    counts: list[int] = []
    slots = Slots(1, on_waiting=counts.append)
    await slots.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await slots.acquire()
        order.append(name)

    tasks = [asyncio.create_task(take(name)) for name in "abc"]
    await asyncio.sleep(0)
    assert slots.waiting == 3
    for _ in "abc":
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert counts == [1, 2, 3, 2, 1, 0]
    assert slots.in_use == 1


async def test_a_timed_out_waiter_leaves_the_queue() -> None:
    slots = Slots(1)
    await slots.acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await slots.acquire()
    assert slots.waiting == 0
    slots.release()
    assert slots.in_use == 0


async def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)  # `second` got it instead
    assert (slots.in_use, slots.waiting) == (1, 0)


async def test_close_fails_waiters_and_newcomers_but_leaves_holders_be() -> None:
    slots = Slots(1)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.close(Closed)
    with pytest.raises(Closed):
        await waiter
    with pytest.raises(Closed):
        await slots.acquire()
    assert slots.in_use == 1
    slots.release()
    assert slots.in_use == 0


async def test_wait_idle_returns_once_every_slot_is_back() -> None:
    slots = Slots(2)
    await slots.wait_idle()
    await slots.acquire()
    await slots.acquire()
    idle = asyncio.create_task(slots.wait_idle())
    slots.release()
    await asyncio.sleep(0)
    assert not idle.done()
    slots.release()
    await asyncio.wait_for(idle, 1)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size >= 1"):
        Slots(0)
