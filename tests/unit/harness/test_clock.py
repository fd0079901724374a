"""The realtime guard: virtual time that waits for an answer from outside the loop.

The "outside" here is a thread that answers after a few real milliseconds, through the
loop's thread-safe wake-up, as PostgreSQL's answer arrives on a socket the loop cannot
hurry: on virtual time, a timeout around such a wait fires at once, unless the wait is
held in the guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from harness.clock import RealtimeGuard, realtime_guard, run

ANSWER_AFTER_S = 0.05


def answer_from_outside(
    after_s: float = ANSWER_AFTER_S,
) -> tuple[asyncio.Future[str], threading.Thread]:
    """A future a thread resolves ``after_s`` real seconds from now, and the thread."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def resolve() -> None:
        if not answer.done():  # a test that timed out cancelled it
            answer.set_result("answer")

    def later() -> None:
        time.sleep(after_s)
        loop.call_soon_threadsafe(resolve)

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    return answer, thread


def test_without_the_guard_virtual_time_jumps_past_the_answer() -> None:
    async def main() -> tuple[bool, float, float]:
        loop = asyncio.get_running_loop()
        started, wall = loop.time(), time.perf_counter()
        answer, answering = answer_from_outside()
        timed_out = False
        try:
            await asyncio.wait_for(answer, 10)
        except TimeoutError:
            timed_out = True
        elapsed = loop.time() - started, time.perf_counter() - wall
        # The late answer finds the future cancelled, in a loop still open.
        await asyncio.to_thread(answering.join)
        return timed_out, *elapsed

    timed_out, simulated, wall = run(main(), "virtual")
    # The spurious timeout this guard exists for: 10 s of loop time in no real time.
    assert timed_out
    assert simulated == pytest.approx(10.0)
    assert wall < ANSWER_AFTER_S


def test_with_the_guard_the_answer_comes_first_and_costs_no_loop_time() -> None:
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with realtime_guard():
            answer = await asyncio.wait_for(answer_from_outside()[0], 10)
        return answer, loop.time() - started

    answer, simulated = run(main(), "virtual")
    assert answer == "answer"
    assert simulated < 1.0  # far from the 10 s timeout (the answer came within its first 80 %)


def test_a_genuine_timeout_still_fires_at_its_moment_after_as_much_real_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        started, wall = loop.time(), time.perf_counter()
        never: asyncio.Future[None] = loop.create_future()  # a server that never answers
        with realtime_guard(), pytest.raises(TimeoutError):
            await asyncio.wait_for(never, 0.2)
        return loop.time() - started, time.perf_counter() - wall

    simulated, wall = run(main(), "virtual")
    assert simulated == pytest.approx(0.2, abs=1e-3)
    assert wall >= 0.15  # waited for real, not jumped


def test_once_released_virtual_time_jumps_again() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        with realtime_guard():
            await asyncio.wait_for(answer_from_outside()[0], 10)
        started, wall = loop.time(), time.perf_counter()
        await asyncio.sleep(600)
        return loop.time() - started, time.perf_counter() - wall

    simulated, wall = run(main(), "virtual")
    assert simulated == pytest.approx(600.0)
    assert wall < 0.5


def test_holders_share_one_pending_future_and_the_last_to_leave_resolves_it() -> None:
    async def main() -> None:
        guard = realtime_guard()
        assert isinstance(guard, RealtimeGuard)
        assert guard is realtime_guard()  # one per loop
        assert not guard.held
        with guard:
            first = guard._pending
            with guard:  # reentrant, as a session inside a probe would be
                assert guard._pending is first
            assert guard.held
            assert first is not None
            assert not first.done()

            async def hold() -> None:
                with guard:
                    await asyncio.sleep(0)

            await asyncio.gather(hold(), hold())  # concurrent holders
            assert guard._pending is first
        assert not guard.held
        assert first.done()
        assert guard._pending is None
        with guard:  # held again: a fresh one
            assert guard._pending is not first

    run(main(), "virtual")


def test_the_guard_is_released_when_the_wait_raises() -> None:
    async def main() -> None:
        guard = realtime_guard()
        assert isinstance(guard, RealtimeGuard)
        with contextlib.suppress(ConnectionError), guard:
            raise ConnectionError("the server went away")
        assert not guard.held

    run(main(), "virtual")


def test_on_real_time_the_guard_is_a_no_op() -> None:
    async def main() -> None:
        guard = realtime_guard()
        assert not isinstance(guard, RealtimeGuard)
        with guard:
            await asyncio.sleep(0)

    run(main(), "real")
