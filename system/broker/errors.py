"""What can go wrong when talking to the broker, named so callers can decide what to do.

The hierarchy follows httpx's: catch ``BrokerError`` for everything, or a subclass for one
decision. The decisions it encodes:

- ``BrokerUnavailable`` (also a ``ConnectionError``): the broker could not be reached or
  answered nothing usable. Nothing happened at the broker; trying again later is safe.
- ``TokenUnavailable``: no access token can be had right now (rejected, or cooling down).
- ``AuthExpired`` / ``RateLimited``: the gateway kept refusing after the client's own retries.
- ``BrokerRejected`` / ``OrderRejected``: the broker answered, and the answer is no.
- ``OrderOutcomeUnknown``: an order may or may not have reached the exchange. Never re-send
  it; ask the broker with ``KisClient.reconcile``.

Messages never contain credentials or tokens: they name the endpoint, the broker's code and
text, and the next step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from system.broker.models import OrderRequest

TOKEN_ENDPOINT = "POST /oauth2/tokenP"


class BrokerError(Exception):
    """Base of every broker error; ``endpoint`` is e.g. ``"GET /uapi/…/inquire-price"``."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint


class BrokerUnavailable(BrokerError, ConnectionError):
    """No usable answer: timeout, transport error, 5xx without a KIS body, malformed body."""


class MalformedResponse(BrokerUnavailable):
    """The broker answered, but not in a shape KIS documents (truncated, empty, not JSON…)."""


class TokenUnavailable(BrokerUnavailable):
    """No access token can be had right now; requests that need one were not sent."""


class TokenIssuanceFailed(TokenUnavailable):
    """``POST /oauth2/tokenP`` was refused, e.g. HTTP 403 ``EGW00133`` (one token a minute)."""

    def __init__(
        self,
        *,
        error_code: str,
        description: str,
        status_code: int,
        cooldown_s: float,
        endpoint: str = TOKEN_ENDPOINT,
    ) -> None:
        super().__init__(
            f"{endpoint}: token issuance refused with HTTP {status_code} "
            f"{error_code} ({description}); no new token can be requested for "
            f"{cooldown_s:.1f} s — wait, then retry; if it persists check the app's key "
            "and secret",
            endpoint=endpoint,
        )
        self.error_code = error_code
        self.description = description
        self.status_code = status_code


class TokenCooldown(TokenUnavailable):
    """A token was requested too recently; asking again now would earn an ``EGW00133``."""

    def __init__(
        self, *, retry_after: float, attempted_at: float, endpoint: str = TOKEN_ENDPOINT
    ) -> None:
        super().__init__(
            f"{endpoint}: token issuance is cooling down after an attempt at loop time "
            f"{attempted_at:.1f} s; retry in {retry_after:.1f} s "
            "(brokers limit issuance: KIS allows one token per minute)",
            endpoint=endpoint,
        )
        self.retry_after = retry_after
        self.attempted_at = attempted_at


class AuthExpired(BrokerError):
    """The gateway still said the token was expired/invalid after one fresh token."""

    def __init__(self, *, endpoint: str, msg_cd: str, msg1: str) -> None:
        super().__init__(
            f"{endpoint}: the broker still rejects the access token ({msg_cd} {msg1}) after a "
            "fresh token was issued; the request was not executed — check that appkey, "
            "appsecret and base_url belong to the same (real or paper) environment",
            endpoint=endpoint,
        )
        self.msg_cd = msg_cd
        self.msg1 = msg1


class RateLimited(BrokerError):
    """The gateway kept answering ``EGW00201`` (per-second budget exceeded)."""

    def __init__(self, *, endpoint: str, retries: int, retry_after: float, msg1: str) -> None:
        super().__init__(
            f"{endpoint}: the broker's per-second budget is exceeded (EGW00201 {msg1}) and "
            f"stayed so after {retries} retries; the request was not executed — retry in "
            f"{retry_after:.1f} s and lower requests_per_second if other clients share the account",
            endpoint=endpoint,
        )
        self.retry_after = retry_after
        self.retries = retries


class BrokerRejected(BrokerError):
    """The broker answered ``rt_cd != "0"``: a business rejection, not a transport problem."""

    def __init__(self, *, endpoint: str, msg_cd: str, msg1: str, status_code: int) -> None:
        super().__init__(
            f"{endpoint}: the broker rejected the request with {msg_cd} ({msg1}), "
            f"HTTP {status_code}; retrying the same request will not help — fix its input",
            endpoint=endpoint,
        )
        self.msg_cd = msg_cd
        self.msg1 = msg1
        self.status_code = status_code


class OrderRejected(BrokerRejected):
    """An order the broker refused; it was not placed, so it may be corrected and re-sent."""


class OrderBlocked(BrokerError):
    """An order the system stopped itself at the last moment, before it left: what the
    ``order_permit`` said (a halt that came between deciding to trade and sending). It was
    not placed, so nothing needs reconciling; whether to send it later is the caller's call.
    """

    def __init__(self, *, order: OrderRequest, endpoint: str, reason: str) -> None:
        super().__init__(
            f"{endpoint}: {order.client_order_id} was not sent: {reason}", endpoint=endpoint
        )
        self.order = order
        self.reason = reason


class OrderOutcomeUnknown(BrokerError):
    """An order was sent and no verdict came back: it may or may not be at the exchange."""

    def __init__(self, *, order: OrderRequest, sent_at: float, endpoint: str, reason: str) -> None:
        price = "market" if order.price is None else f"{order.price}"
        super().__init__(
            f"{endpoint}: the outcome of order {order.client_order_id!r} ({order.side} "
            f"{order.quantity} × {order.code} @ {price}) is unknown: {reason}; "
            "do not re-send; call reconcile() to find out whether it was placed",
            endpoint=endpoint,
        )
        self.order = order
        self.sent_at = sent_at
        self.reason = reason
