"""What can go wrong with the realtime feed, named so callers can decide what to do.

As in ``system.broker.errors`` (and httpx): catch ``FeedError`` for everything, or one
subclass for one decision.

- ``FeedProtocolError``: one server message does not match the KIS realtime specification.
  The client drops that message, counts it (``feed_malformed_frames``) and reads on.
- ``FeedUnavailable`` (also a ``ConnectionError``): the server could not be reached, refused
  the handshake, or the connection broke. The client reconnects with backoff.
- ``SubscriptionLimitExceeded``: a subscription beyond the broker's per-appkey limit, refused
  by this client before anything was sent.

Messages never contain the approval key or the appsecret: excerpts of server messages are
cut short and have credential fields blanked.
"""

from __future__ import annotations

import re

_EXCERPT_CHARS = 80
# A server that echoes a subscribe message back would echo the approval key with it.
_CREDENTIAL = re.compile(r'("(?:approval_key|secretkey|appsecret|appkey|token)"\s*:\s*)"[^"]*"?')


def excerpt(text: str) -> str:
    """The start of a server message, safe for an error message or a log."""
    cleaned = _CREDENTIAL.sub(r'\1"***"', text)
    if len(cleaned) > _EXCERPT_CHARS:
        return repr(cleaned[:_EXCERPT_CHARS]) + f" … ({len(text)} characters)"
    return repr(cleaned)


class FeedError(Exception):
    """Base of every realtime feed error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FeedProtocolError(FeedError):
    """A server message that does not match its protocol's specification (by default the
    KIS realtime one; the rate feed's is Kraken's WebSocket v2 ticker channel).

    ``text`` is a safe excerpt of the message (see ``excerpt``).
    """

    def __init__(
        self, problem: str, *, text: str, protocol: str = "the KIS realtime protocol"
    ) -> None:
        safe = excerpt(text)
        super().__init__(
            f"realtime message {safe}: {problem}; the message was dropped — if "
            f"this repeats, the server does not speak {protocol}"
        )
        self.problem = problem
        self.text = safe


class MalformedMessage(FeedProtocolError):
    """Neither a JSON control message nor a ``flag|tr_id|count|data`` frame, or one of those
    with parts missing (truncated JSON, no header, no count…)."""


class FieldCountMismatch(FeedProtocolError):
    """A frame whose data does not hold ``count × columns`` fields."""


class UnknownTrId(FeedProtocolError):
    """A data frame for a tr_id this client never subscribes to and cannot read."""


class InvalidValue(FeedProtocolError):
    """A field that is not a number where KIS sends numbers, or a number no market has
    (a negative price, a time of 25:00, an infinite rate…)."""


class FeedUnavailable(FeedError, ConnectionError):
    """The realtime server could not be reached, refused the handshake or the session, or
    the connection broke. Nothing to fix in the caller: the client reconnects by itself."""


class FeedConnectionClosed(FeedUnavailable):
    """The connection closed; ``code`` and ``reason`` are the WebSocket close frame's, when
    the peer sent one (``code`` is None after a reset or a silent drop)."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class SubscriptionLimitExceeded(FeedError):
    """Subscribing would exceed the broker's limit of realtime registrations per appkey."""

    def __init__(self, *, code: str, wanted: int, limit: int) -> None:
        super().__init__(
            f"cannot subscribe {code}: it needs {wanted} more realtime registration(s) and "
            f"{limit} are allowed per appkey (KIS answers OPSP0008 MAX SUBSCRIBE OVER beyond "
            "that); nothing was sent — unsubscribe another code first, or raise "
            "max_subscriptions if the broker allows more"
        )
        self.code = code
        self.wanted = wanted
        self.limit = limit
