"""Where the feed client gets a price when the feed cannot be trusted: a REST quote.

The client asks through a ``Resync`` callable so it depends on no broker client; the
wiring backs it with ``TradingService.quote`` (which waits out token cooldowns and retries
an unavailable broker) through ``quote_resync``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from system.broker.clock import loop_time
from system.broker.models import Quote
from system.market.model import PriceUpdate

Resync = Callable[[str], Awaitable[PriceUpdate]]


def quote_resync(quote: Callable[[str], Awaitable[Quote]]) -> Resync:
    """A ``Resync`` from a quote source such as ``TradingService.quote`` or
    ``KisClient.get_price``; the update is stamped with the loop time the quote arrived."""

    async def resync(code: str) -> PriceUpdate:
        answer = await quote(code)
        return PriceUpdate(
            code=answer.code,
            price=answer.price,
            change=answer.change,
            change_rate=answer.change_rate,
            volume=answer.volume,
            at=loop_time(),
            source="rest",
        )

    return resync
