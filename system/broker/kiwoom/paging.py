"""Following Kiwoom's pages: an answer with ``cont-yn: Y`` has more, asked for with its
``next-key`` (``KiwoomWire`` sends both back)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from system.broker.errors import MalformedResponse
from system.broker.gateway import BrokerGateway, Call, Reply
from system.broker.paging import MAX_PAGES
from system.broker.wire import encode_json

T = TypeVar("T")


def more_follows(reply: Reply) -> bool:
    return str(reply.headers.get("cont-yn", "")).strip().upper() == "Y"


async def follow_pages(
    gateway: BrokerGateway,
    path: str,
    api_id: str,
    body: Mapping[str, Any],
    parse_page: Callable[[Reply], T],
) -> list[T]:
    """Every page of one TR's answer, parsed; at most ``MAX_PAGES``."""
    content = encode_json(body)
    next_key = ""
    parsed: list[T] = []
    for _ in range(MAX_PAGES):
        call = Call("POST", path, tr_id=api_id, content=content, next_key=next_key)
        reply, item = await gateway.read(call, lambda reply: (reply, parse_page(reply)))
        parsed.append(item)
        if not more_follows(reply):
            return parsed
        key = str(reply.headers.get("next-key", "")).strip()
        if not key or key == next_key:
            raise MalformedResponse(
                f"{call.endpoint} ({api_id}): the broker says more pages follow (cont-yn Y) "
                f"but gave {'no' if not key else 'the same'} next-key; stopping instead of "
                "looping — retry later",
                endpoint=call.endpoint,
            )
        next_key = key
    raise MalformedResponse(
        f"POST {path} ({api_id}): the broker still says more pages follow after {MAX_PAGES} "
        "pages; stopping instead of looping — retry later",
        endpoint=f"POST {path}",
    )
