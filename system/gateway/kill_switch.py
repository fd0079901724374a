"""The manual kill switch over HTTP: what the gateway needs of the trading desk, who may
use it, and what a command looks like. No I/O here; the routes are in ``system.gateway.app``.

``GET /api/kill-switch`` (no token: anyone may see whether trading is halted) answers
**200** ``{"engaged", "reason", "detail", "at", "automatic"}`` (all but ``engaged`` null
while trading runs; ``at`` is the system's loop clock in seconds, not wall time), or
**404** when the system runs no trading desk. ``GET /api/trading`` carries the same body as
its ``halt`` (``system.gateway.trading``); the dashboard reads it there.

``POST /api/kill-switch`` with ``Authorization: Bearer <SQUALL_GATEWAY_OPERATOR_TOKEN>``
and a JSON body ``{"engaged": true, "detail": "why"}`` (engage; ``detail`` optional) or
``{"engaged": false}`` (release) acts with ``by="operator"`` and answers **200** with the
state and ``"changed"`` (false: it was engaged, or released, already). Refusals, each
``{"error": "<what is wrong and what to do>"}``, checked in this order:

- **404** — no trading desk;
- **403** — the gateway has no operator token (``SQUALL_GATEWAY_OPERATOR_TOKEN`` unset):
  nobody may switch, since nobody can prove they are the operator;
- **401** with ``WWW-Authenticate: Bearer`` — the token is missing or wrong (compared in
  constant time); the body never echoes what was sent;
- **415** — the body is not sent as JSON (``Content-Type: application/json`` or
  ``application/*+json``). Decided so: a command that stops or resumes trading is not
  guessed from a form or plain text, and a browser cannot send JSON across origins without
  the gateway's consent (a preflight it never grants);
- **400** — the body is not JSON, not an object, has keys besides ``engaged`` and
  ``detail``, lacks a boolean ``engaged``, has a ``detail`` that is not a string, is over
  ``MAX_DETAIL_CHARS`` characters or holds control characters (it goes into logs and
  alerts), or has a ``detail`` with ``"engaged": false`` (a release takes none).
"""

from __future__ import annotations

import hmac
import json
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from system.gateway.settings import MIN_OPERATOR_TOKEN_CHARS
from system.health import Health

# The longest reason an operator may give for a halt (it goes into logs and alerts).
MAX_DETAIL_CHARS = 500
# Who the desk is told engaged or released the switch.
OPERATOR = "operator"
# What the desk is told when an operator halts without saying why.
DEFAULT_DETAIL = "halted by an operator over the gateway's API (no detail given)"

_EXAMPLE = '{"engaged": true, "detail": "why"} or {"engaged": false}'


class HaltState(Protocol):
    """A halt in force (``system.trading.risk.Halt``)."""

    @property
    def reason(self) -> str: ...

    @property
    def detail(self) -> str: ...

    @property
    def at(self) -> float: ...

    @property
    def automatic(self) -> bool: ...


class KillSwitchControl(Protocol):
    """What the gateway needs of the trading desk (``system.trading.desk.Desk``)."""

    def engage(self, detail: str, *, by: str) -> bool:
        """Halt trading; False if it was halted already."""
        ...

    def release(self, *, by: str) -> bool:
        """End every halt; False if none was in force."""
        ...

    @property
    def halt(self) -> HaltState | None:
        """The halt in force, or None while trading runs."""
        ...


def switch_state(halt: HaltState | None) -> dict[str, object]:
    """The body of ``GET /api/kill-switch``."""
    if halt is None:
        return {"engaged": False, "reason": None, "detail": None, "at": None, "automatic": None}
    return {
        "engaged": True,
        "reason": halt.reason,
        "detail": halt.detail,
        "at": halt.at,
        "automatic": halt.automatic,
    }


def trading_health(halt: HaltState | None) -> Health:
    """The ``trading`` part of ``/health``.

    A halt is *degraded*, never unhealthy: it is a deliberate, safe state (no order goes
    out), and the gateway and the rest of the system still serve. Unhealthy would answer
    503 and make a load balancer take the gateway out of rotation — and with it the
    dashboard and the API an operator needs to see the halt and release it.
    """
    if halt is None:
        return Health("healthy")
    how = "automatically" if halt.automatic else "by hand"
    return Health(
        "degraded",
        (
            f"trading halted {how} ({halt.reason}): {halt.detail}; no order is sent until "
            'an operator releases it (POST /api/kill-switch {"engaged": false})',
        ),
    )


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the status and the message of its problem JSON."""

    status: int
    message: str


def check_operator(
    authorization: str | None, token: SecretStr | None, doing: str = "setting the kill switch"
) -> Refusal | None:
    """None when ``authorization`` (the header, as Starlette decodes it: latin-1) carries
    ``token``; else why not, naming what the request was ``doing``. Neither value ever
    appears in the message."""
    if token is None:
        return Refusal(
            403,
            f"{doing} is not possible over the API: this gateway has no operator token. "
            f"Set SQUALL_GATEWAY_OPERATOR_TOKEN (at least {MIN_OPERATOR_TOKEN_CHARS} characters, "
            "e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) and restart it",
        )
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return Refusal(
            401,
            f"{doing} needs the operator token: send the header "
            '"Authorization: Bearer <token>" with the value of SQUALL_GATEWAY_OPERATOR_TOKEN',
        )
    # Bytes, so a non-ASCII guess compares (unequal) instead of raising; latin-1 gives back
    # the bytes the client sent.
    expected = token.get_secret_value().encode()
    if not hmac.compare_digest(presented.encode("latin-1"), expected):
        return Refusal(
            401,
            "the operator token is wrong: send the value of SQUALL_GATEWAY_OPERATOR_TOKEN as "
            '"Authorization: Bearer <token>"',
        )
    return None


def check_media_type(content_type: str | None) -> Refusal | None:
    """None for a JSON content type; else a 415 saying how to send the command."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return None
    sent = f"Content-Type {media_type}" if media_type else "no Content-Type"
    return Refusal(
        415,
        f"the command must be JSON, but the request has {sent}: send "
        f'"Content-Type: application/json" and a body such as {_EXAMPLE}',
    )


@dataclass(frozen=True)
class Command:
    """A valid ``POST /api/kill-switch`` body: engage (with the detail) or release."""

    engaged: bool
    detail: str


def parse_command(body: bytes) -> Command | Refusal:
    """The command in ``body``, or a 400 saying what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested absurdly deep
        return _bad(f"the body is not valid JSON: send {_EXAMPLE}")
    if not isinstance(data, dict):
        return _bad(f"the body must be a JSON object, got {_json_kind(data)}: send {_EXAMPLE}")
    unknown = sorted(set(data) - {"engaged", "detail"})
    if unknown:
        # Named only when too short to be a token someone pasted in the wrong place.
        named = [json.dumps(key) for key in unknown if len(key) < MIN_OPERATOR_TOKEN_CHARS]
        if len(named) < len(unknown):
            named.append(f"{len(unknown) - len(named)} longer one(s)")
        return _bad(
            f"unknown field(s) {', '.join(named)}: send only engaged and detail, e.g. {_EXAMPLE}"
        )
    engaged = data.get("engaged")
    if not isinstance(engaged, bool):
        got = "nothing" if "engaged" not in data else _json_kind(engaged)
        return _bad(
            f"engaged must be true (halt trading) or false (resume), got {got}: send {_EXAMPLE}"
        )
    detail = data.get("detail")
    if detail is None:
        return Command(engaged, DEFAULT_DETAIL if engaged else "")
    if not isinstance(detail, str):
        return _bad(f"detail must be a string saying why, got {_json_kind(detail)}")
    if not engaged:
        return _bad(
            'detail goes with {"engaged": true} only: a release takes none (the desk records '
            'who released); send {"engaged": false}'
        )
    if len(detail) > MAX_DETAIL_CHARS:
        return _bad(
            f"detail is {len(detail)} characters long; at most {MAX_DETAIL_CHARS} are allowed"
        )
    if any(unicodedata.category(char) == "Cc" for char in detail):
        return _bad("detail must be one line of text without control characters")
    detail = detail.strip()
    return Command(True, detail or DEFAULT_DETAIL)


def _bad(message: str) -> Refusal:
    return Refusal(400, message)


def _json_kind(value: object) -> str:
    """What a JSON value is, without echoing it (it may be long, or a pasted token)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
