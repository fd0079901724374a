"""What both realtime clients (``FeedClient``, ``RateFeedClient``) do alike with one
connection: say why it ended (``ConnectionLost``), read it until it falls silent, close it
within a bound, and describe an error without quoting text that is not ours to vouch for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import NoReturn

from system.broker.errors import BrokerError
from system.market.connection import Connection
from system.market.errors import FeedError


class ConnectionLost(Exception):
    """Why a connection ended (or never opened): the reason goes into the status detail;
    ``stalled`` when it went silent (its close need not be waited for)."""

    def __init__(self, reason: str, *, stalled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stalled = stalled


async def read_until_silent(
    connection: Connection,
    handle: Callable[[str], Awaitable[None]],
    *,
    heard: Callable[[], float],
    stall_after_s: float,
    silence: str,
) -> NoReturn:
    """Hand every message to ``handle``, in order, until nothing has come for
    ``stall_after_s`` since ``heard()`` (the loop time anything last arrived, or the
    connection opened): then ``ConnectionLost`` (stalled), saying "stalled: ``silence``"."""
    while True:
        try:
            async with asyncio.timeout_at(heard() + stall_after_s):
                text = await connection.recv()
        except TimeoutError:
            raise ConnectionLost(
                f"stalled: {silence} for {stall_after_s:.1f} s", stalled=True
            ) from None
        await handle(text)


async def close_within(connection: Connection, seconds: float) -> None:
    """Close ``connection``, waiting ``seconds`` at most: a peer that stopped answering must
    not hold the client up, and whatever goes wrong while closing changes nothing."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            await connection.close()


def describe(error: BaseException, *, connect_timeout_s: float) -> str:
    """What ``error`` means, for a status detail or a log."""
    if isinstance(error, FeedError | BrokerError):
        return error.message
    if isinstance(error, TimeoutError):
        return f"no connection within {connect_timeout_s:.1f} s"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error}"
    # Other errors' texts are not ours to vouch for (they could quote a credential).
    return type(error).__name__
