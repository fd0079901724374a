"""``GET /api/quotes/{code}`` and ``POST /api/orders``: quotes and orders through the
system's own API, as its users (and the load tier's users) reach it. No I/O here: the
parsing of an order and the mapping of the service's errors to answers.

``GET /api/quotes/{code}`` — the service's quote (the broker's REST price, through the
client's budget, token and retries): **200** with the quote; **400** for a code that is not
six digits; **422** when the broker refused it (an unknown stock); **503** with
``Retry-After`` when the broker could not be reached, or asked to wait, in the service's
deadline.

``POST /api/orders`` — an operator's order, with the operator token (``Authorization:
Bearer …``, as for the kill switch) and a JSON body::

    {"client_order_id": "ops-0001", "side": "buy", "code": "005930", "quantity": 1,
     "price": 80100}

``price`` is optional (none: a market order). The client order id is the idempotency key: the
service places at most one order per id, and a second request with an id already placed,
pending or unknown is refused (**409**), never sent again. While trading is halted the order
is refused (**409**, with the halt's reason) before anything is recorded. Answers: **201**
placed (the broker's order number); **202** sent but its outcome unknown (reconciled by the
service; do not send it again); **422** refused by the broker; **503** not sent (the broker
was unreachable; safe to send again); **400** a malformed order; **401**/**403** the token.

Orders placed here are the operator's, not the trading desk's: they respect the halt, and
nothing else of the desk's risk gates (capital per trade, exposure), which guard the desk's
own decisions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from system.broker import models
from system.broker.errors import BrokerError, BrokerRejected, OrderBlocked, OrderOutcomeUnknown
from system.broker.models import OrderAck, OrderRequest, Quote
from system.gateway.kill_switch import Refusal

ORDER_FIELDS = ("client_order_id", "side", "code", "quantity", "price")
MAX_CLIENT_ORDER_ID_CHARS = 64
_EXAMPLE = '{"client_order_id":"ops-0001","side":"buy","code":"005930","quantity":1,"price":80100}'


def check_code(code: str) -> Refusal | None:
    try:
        models.check_code(code)
    except ValueError:
        shown = code if len(code) <= 12 else f"{code[:12]}…"
        return Refusal(400, f"{shown!r} is not a KRX stock code: send six digits, e.g. 005930")
    return None


def quote_body(quote: Quote) -> dict[str, Any]:
    return {"quote": asdict(quote)}


def parse_order(body: bytes) -> OrderRequest | Refusal:
    """The order in ``body``, or a 400 saying what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _bad(f"the body is not valid JSON: send {_EXAMPLE}")
    if not isinstance(data, dict):
        return _bad(f"the body must be a JSON object: send {_EXAMPLE}")
    unknown = sorted(str(key)[:32] for key in set(data) - set(ORDER_FIELDS))
    if unknown:
        return _bad(
            f"unknown field(s) {', '.join(map(repr, unknown))}: an order has "
            f"{', '.join(ORDER_FIELDS)} (price optional)"
        )
    missing = [name for name in ORDER_FIELDS[:4] if name not in data]
    if missing:
        return _bad(f"the order has no {', '.join(missing)}: send {_EXAMPLE}")
    client_order_id, side, code = data["client_order_id"], data["side"], data["code"]
    quantity, price = data["quantity"], data.get("price")
    if not isinstance(client_order_id, str) or not client_order_id.strip():
        return _bad("client_order_id must be a non-empty string: the order's identity")
    if len(client_order_id) > MAX_CLIENT_ORDER_ID_CHARS or not client_order_id.isprintable():
        return _bad(
            f"client_order_id must be at most {MAX_CLIENT_ORDER_ID_CHARS} printable characters"
        )
    if side not in ("buy", "sell"):
        return _bad('side must be "buy" or "sell"')
    if not isinstance(code, str) or check_code(code) is not None:
        return _bad('code must be a KRX stock code as a string of six digits, e.g. "005930"')
    if not _whole(quantity) or quantity <= 0:
        return _bad("quantity must be a positive whole number of shares")
    if price is not None and (not _whole(price) or price <= 0):
        return _bad("price must be a positive whole number of won, or absent for a market order")
    return OrderRequest(client_order_id, side, code, quantity, price)


def order_placed(ack: OrderAck) -> tuple[int, dict[str, Any]]:
    return 201, {"status": "placed", "order": asdict(ack)}


def order_failed(order: OrderRequest, error: Exception) -> tuple[int, dict[str, Any]]:
    """The status and body for an order ``place_order`` did not place."""
    if isinstance(error, OrderOutcomeUnknown):
        return 202, {
            "status": "unknown",
            "client_order_id": order.client_order_id,
            "error": f"{error}; the service reconciles it: do not send it again",
        }
    if isinstance(error, BrokerRejected):
        return 422, {"status": "rejected", "error": str(error)}
    if isinstance(error, OrderBlocked):  # a halt came while it was on its way
        return 409, {"status": "halted", "error": f"{error}; release the halt first"}
    if isinstance(error, ValueError):  # this id is already pending, placed or unknown
        return 409, {"status": "duplicate", "error": str(error)}
    return 503, {"status": "not-sent", "error": f"{error}; it was not placed: safe to send again"}


def quote_failed(error: BrokerError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, body and headers for a quote the service could not give."""
    if isinstance(error, BrokerRejected):
        return 422, {"error": str(error)}, {}
    retry = {"Retry-After": str(retry_after_s(error))}
    return 503, {"error": f"{error}; try again later"}, retry


def retry_after_s(error: BaseException) -> int:
    """Whole seconds a caller should wait after ``error`` (at least 1)."""
    wait = getattr(error, "retry_after", None)
    return max(1, math.ceil(wait)) if isinstance(wait, int | float) else 1


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(message: str) -> Refusal:
    return Refusal(400, message)
