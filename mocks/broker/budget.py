"""The per-second request budget (EGW00201): a sliding one-second window per app key.

Only admitted requests count; a rejected one costs the client nothing but the round trip,
which is how clients that wait and retry recover.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 1.0


class RequestBudget:
    def __init__(self) -> None:
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, appkey: str, now: float, per_second: int) -> bool:
        times = self._admitted.setdefault(appkey, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        if len(times) >= per_second:
            return False
        times.append(now)
        return True

    def reset(self) -> None:
        self._admitted.clear()
