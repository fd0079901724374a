"""The system's realtime market data: the broker's realtime feed client, the FX venue's rate
feed client, and what they give out.

``FeedClient`` implements ``PriceFeed`` (``system.market.model``) on a broker's realtime
WebSocket, in the broker's ``Dialect``: ``KIS`` (``system.market.protocol``) or ``KIWOOM``
(``system.market.kiwoom_protocol``), both without I/O; ``FeedSettings.from_env()`` reads
``SQUALL_FEED_*``. Errors derive from ``FeedError``. ``RateFeedClient``
gives ``RateQuote``s of currency pairs from an FX venue's ticker stream (Kraken's WebSocket
v2 protocol, ``system.market.rate_protocol``); ``RateFeedSettings.from_env()`` reads
``SQUALL_RATES_*``.
"""

from system.market.connection import Connect, Connection, WebSocketConnection, connect_websocket
from system.market.dialect import Dialect
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
from system.market.feed import FeedClient, metric_names
from system.market.kiwoom_protocol import KIWOOM
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
from system.market.protocol import KIS
from system.market.rate_feed import RateFeedClient
from system.market.rate_feed import metric_names as rate_metric_names
from system.market.records import Trade
from system.market.resync import Resync, quote_resync
from system.market.settings import FeedSettings, RateFeedSettings

__all__ = [
    "FEED_STATE_CODES",
    "KIS",
    "KIWOOM",
    "BookLevel",
    "Connect",
    "Connection",
    "Dialect",
    "FeedClient",
    "FeedConnectionClosed",
    "FeedError",
    "FeedProtocolError",
    "FeedSettings",
    "FeedState",
    "FeedStatus",
    "FeedUnavailable",
    "FieldCountMismatch",
    "InvalidValue",
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
