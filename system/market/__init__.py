"""The system's realtime market data: the KIS realtime feed client and what it gives out.

``KisFeedClient`` implements ``PriceFeed`` (``system.market.model``) on the KIS realtime
WebSocket; ``FeedSettings.from_env()`` reads ``SQUALL_FEED_*``. The protocol itself is in
``system.market.protocol`` (no I/O), errors derive from ``FeedError``.
"""

from system.market.connection import Connect, Connection, WebSocketConnection, connect_websocket
from system.market.errors import (
    FeedConnectionClosed,
    FeedError,
    FeedProtocolError,
    FeedUnavailable,
    FieldCountMismatch,
    InvalidValue,
    MalformedMessage,
    SubscriptionLimitExceeded,
    UnknownTrId,
)
from system.market.feed import KisFeedClient, metric_names
from system.market.model import (
    FEED_STATE_CODES,
    BookLevel,
    FeedState,
    FeedStatus,
    OrderBook,
    PriceFeed,
    PriceListener,
    PriceSource,
    PriceUpdate,
    StatusListener,
)
from system.market.records import Trade
from system.market.resync import Resync, quote_resync
from system.market.settings import FeedSettings

__all__ = [
    "FEED_STATE_CODES",
    "BookLevel",
    "Connect",
    "Connection",
    "FeedConnectionClosed",
    "FeedError",
    "FeedProtocolError",
    "FeedSettings",
    "FeedState",
    "FeedStatus",
    "FeedUnavailable",
    "FieldCountMismatch",
    "InvalidValue",
    "KisFeedClient",
    "MalformedMessage",
    "OrderBook",
    "PriceFeed",
    "PriceListener",
    "PriceSource",
    "PriceUpdate",
    "Resync",
    "StatusListener",
    "SubscriptionLimitExceeded",
    "Trade",
    "UnknownTrId",
    "WebSocketConnection",
    "connect_websocket",
    "metric_names",
    "quote_resync",
]
