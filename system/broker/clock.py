"""Time for the broker client.

Durations (cooldowns, expiry, rate windows, backoff) are measured on the running event loop's
clock so a whole stack can run on virtual time (looptime, the harness's clock). The only
wall-clock reading is the trading date, which KIS inquiries need in KST; it is injectable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

KST = timezone(timedelta(hours=9), name="KST")

Today = Callable[[], date]
Now = Callable[[], datetime]  # the KST wall time now (a scenario's runs on its mocks' clock)


def loop_time() -> float:
    """Seconds on the running loop's monotonic clock (virtual under looptime)."""
    return asyncio.get_running_loop().time()


def kst_now() -> datetime:
    """The wall time in Korea, where the exchange and the broker's order books live."""
    return datetime.now(KST)


def kst_today() -> date:
    """Today's date in Korea."""
    return kst_now().date()
