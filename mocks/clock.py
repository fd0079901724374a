"""The mock's time: offsets on the running event loop's clock, and a wall clock derived from it.

Everything that a broker rule measures (token intervals, per-second budgets, expiry) reads
``now()``, the loop's ``time()`` minus the moment the mock started. Under a virtual-time
loop (looptime) minutes of broker time pass in milliseconds, and the rules still hold.
Wall-clock strings the protocol needs (token expiry, order times) are the start's wall time
plus the same offset, so they advance with virtual time too.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

KST = timezone(timedelta(hours=9), "KST")


class MockClock:
    def __init__(self, wall_origin: datetime | None = None) -> None:
        self._origin: float | None = None
        self._wall_origin = wall_origin

    def start(self) -> None:
        """Pin offset zero to now. Called at server start-up and on reset."""
        self._origin = asyncio.get_running_loop().time()
        if self._wall_origin is None:
            self._wall_origin = datetime.now(KST)

    def now(self) -> float:
        """Seconds since start on the loop clock."""
        if self._origin is None:
            self.start()
        assert self._origin is not None
        return asyncio.get_running_loop().time() - self._origin

    def wall(self, offset: float | None = None) -> datetime:
        """The KST wall time at ``offset`` (default: now)."""
        at = self.now() if offset is None else offset
        if self._wall_origin is None:
            self._wall_origin = datetime.now(KST)
        return self._wall_origin + timedelta(seconds=at)
