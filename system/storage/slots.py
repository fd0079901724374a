"""Admission to the pool: at most ``size`` callers hold (or are opening) a connection.

asyncpg's pool queues callers too, but it cannot say how many wait, and a waiter in it
stays blocked when the pool closes. ``Slots`` sits in front of it with exactly
``max_size`` slots, so asyncpg's own queue never has waiters, and gives the pool manager:
an exact ``waiting`` count (the saturation signal), FIFO hand-over, and ``close()``, which
fails every waiter at once instead of leaving it to its timeout. It does no I/O.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Slots:
    """A FIFO semaphore that counts its waiters and can be closed."""

    def __init__(self, size: int, *, on_waiting: Callable[[int], None] | None = None) -> None:
        if size < 1:
            raise ValueError(f"Slots needs size >= 1, got {size}")
        self.size = size
        # Told the new count whenever a caller starts or stops waiting.
        self._on_waiting = on_waiting
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed: Callable[[], BaseException] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_use(self) -> int:
        return self.size - self._free

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting in line if none is free (wrap in a timeout to bound it)."""
        if self._closed is not None:
            raise self._closed()
        if self._free and not self._waiters:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._waiting_changed()
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a slot just as we were cancelled: pass it on, or it is lost.
                self.release()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
                self._waiting_changed()
            raise

    def release(self) -> None:
        """Give a slot back: straight to the first waiter, else to the free count."""
        skipped = False
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; _free stays as it is
                self._waiting_changed()
                return
            skipped = True  # cancelled, and its task has not yet run to remove it
        if skipped:
            self._waiting_changed()
        self._free += 1
        if self._free == self.size:
            self._idle.set()

    def close(self, error: Callable[[], BaseException]) -> None:
        """Refuse new callers and fail every waiter with ``error()``; holders keep theirs."""
        self._closed = error
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error())
        self._waiting_changed()

    async def wait_idle(self) -> None:
        """Return once every slot is back (immediately if none is taken)."""
        await self._idle.wait()

    def _waiting_changed(self) -> None:
        if self._on_waiting is not None:
            self._on_waiting(len(self._waiters))

    def _take(self) -> None:
        self._free -= 1
        self._idle.clear()
