"""The system's realtime market data: the KIS realtime feed client, the FX venue's rate
feed client, and what they give out.

``KisFeedClient`` implements ``PriceFeed`` (``system.market.model``) on the KIS realtime
WebSocket; ``FeedSettings.from_env()`` reads ``SQUALL_FEED_*``. The protocol itself is in
``system.market.protocol`` (no I/O), errors derive from ``FeedError``. ``RateFeedClient``
gives ``RateQuote``s of currency pairs from an FX venue's ticker stream (Kraken's WebSocket
v2 protocol, ``system.market.rate_protocol``); ``RateFeedSettings.from_env()`` reads
``SQUALL_RATES_*``.
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
    RateListener,
    RateQuote,
    StatusListener,
)
from system.market.rate_feed import RateFeedClient
from system.market.rate_feed import metric_names as rate_metric_names
from system.market.records import Trade
from system.market.resync import Resync, quote_resync
from system.market.settings import FeedSettings, RateFeedSettings

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
    "RateFeedClient",
    "RateFeedSettings",
    "RateListener",
    "RateQuote",
    "Resync",
    "StatusListener",
    "SubscriptionLimitExceeded",
    "Trade",
    "UnknownTrId",
    "WebSocketConnection",
    "connect_websocket",
    "metric_names",
    "quote_resync",
    "rate_metric_names",
]
