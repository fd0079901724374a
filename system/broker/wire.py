"""Small pieces of the broker wire shared by the token issuer and the gateway."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from system.broker.settings import BrokerSettings

JSON_CONTENT = "application/json; charset=utf-8"
# These fail before a single byte of the request leaves: nothing can have reached the broker.
NEVER_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


@dataclass
class Counters:
    """The client's running counts; ``KisClient.metrics`` snapshots them."""

    requests_sent: int = 0
    rate_limited_retries: int = 0
    retries: int = 0
    unavailable_errors: int = 0
    orders_unknown: int = 0
    orders_reconciled: int = 0
    orders_confirmed_absent: int = 0


def encode_json(body: Mapping[str, Any]) -> bytes:
    """A request body as the client sends it: UTF-8 JSON, Korean as is, no spaces (KIS hashes
    these exact bytes for its hashkey)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_or_none(response: httpx.Response) -> object:
    """The decoded body, or ``None`` if it is empty, truncated, not JSON, or not UTF-8."""
    try:
        return response.json()
    except ValueError:
        return None


def oauth_error(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (code, description) of an ``/oauth2`` endpoint's refusal, if ``body`` is one.

    KIS answers these OAuth-style (``error_code``/``error_description``, e.g. ``EGW00133``)
    rather than with the ``rt_cd`` body of the ``/uapi`` endpoints; its usual ``msg_cd``/
    ``msg1`` keys are accepted as well.
    """
    code = body.get("error_code") or body.get("msg_cd")
    if not code:
        return None
    return str(code), str(body.get("error_description") or body.get("msg1") or "")


def snippet(response: httpx.Response) -> str:
    """The start of a body, for error messages about answers that make no sense."""
    text = response.content[:80].decode("utf-8", errors="replace").strip()
    return repr(text) if text else "empty body"


def describe(exc: httpx.TransportError, settings: BrokerSettings) -> str:
    """What a transport failure means, in words (httpx's messages are often empty)."""
    name = type(exc).__name__
    detail = f"{name}: {exc}" if str(exc) else name
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {settings.timeout_s:.1f} s ({detail})"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect to {settings.base_url} ({detail})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection broke or the answer was truncated ({detail})"
    return detail
