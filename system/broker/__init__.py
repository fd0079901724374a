"""The system's async KIS Open API client (domestic stocks), on httpx.

``KisClient`` is the entry point; ``KisSettings`` configures it (``KisSettings.from_env()``
reads ``SQUALL_KIS_*``). Errors derive from ``BrokerError``; see ``system.broker.errors`` for
what each one means and what to do about it.
"""

from system.broker.client import BrokerClient, TokenState
from system.broker.clock import KST, kst_today, loop_time
from system.broker.errors import (
    AuthExpired,
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    MalformedResponse,
    OrderBlocked,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    TokenCooldown,
    TokenIssuanceFailed,
    TokenUnavailable,
)
from system.broker.kis import KisClient
from system.broker.models import (
    Balance,
    BrokerMetrics,
    DailyOrder,
    Holding,
    OrderAck,
    OrderBook,
    OrderRequest,
    Quote,
    Side,
)
from system.broker.ratelimit import RateLimiter
from system.broker.settings import KisSettings, SettingsError
from system.broker.token import IssuedToken, TokenManager

__all__ = [
    "KST",
    "AuthExpired",
    "Balance",
    "BrokerClient",
    "BrokerError",
    "BrokerMetrics",
    "BrokerRejected",
    "BrokerUnavailable",
    "DailyOrder",
    "Holding",
    "IssuedToken",
    "KisClient",
    "KisSettings",
    "MalformedResponse",
    "OrderAck",
    "OrderBlocked",
    "OrderBook",
    "OrderOutcomeUnknown",
    "OrderRejected",
    "OrderRequest",
    "Quote",
    "RateLimited",
    "RateLimiter",
    "SettingsError",
    "Side",
    "TokenCooldown",
    "TokenIssuanceFailed",
    "TokenManager",
    "TokenState",
    "TokenUnavailable",
    "kst_today",
    "loop_time",
]
