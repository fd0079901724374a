"""The market's control plane on the broker: market events a scenario injects.

``POST /_squall/market/events`` adds one (``mocks.market_events``: gap, limit-up,
limit-down, vi of a stock; mispricing of an FX pair), ``GET`` lists them as stored (each
``at`` pinned), ``DELETE`` clears them; ``POST /_squall/reset`` clears them too. The feed
of the same world shares the events (``mocks.world``), so its frames and its FX quotes show
what is injected here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError

from mocks.broker.state import Broker
from mocks.control import PREFIX, ControlPlane, json_body, validation_summary
from mocks.fx import UnknownPair
from mocks.market import EventInThePast, UnknownInstrument
from mocks.market_events import KINDS, MARKET_EVENT, MarketEvent

EVENTS = f"{PREFIX}/market/events"


def event_json(event: MarketEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)


def router(broker: Broker, plane: ControlPlane) -> APIRouter:
    api = APIRouter(prefix=EVENTS, dependencies=[Depends(plane.authorize)])

    @api.get("")
    async def list_events() -> list[dict[str, Any]]:
        return [event_json(event) for event in broker.market.events]

    @api.post("", status_code=201)
    async def add_event(request: Request) -> dict[str, Any]:
        payload = await json_body(request, "market event")
        if not isinstance(payload, dict):
            raise HTTPException(400, "send a market event as a JSON object")
        if "kind" not in payload:
            raise HTTPException(422, f"a market event needs a kind: one of {', '.join(KINDS)}")
        try:
            event = MARKET_EVENT.validate_python(payload)
        except ValidationError as exc:
            raise HTTPException(422, validation_summary(exc, "market event")) from None
        try:
            stored = broker.market.inject(event, plane.clock.now())
        except UnknownInstrument:
            raise HTTPException(
                422, f"code: {event.subject} is not listed in the simulated market"
            ) from None
        except UnknownPair as unknown:
            raise HTTPException(422, f"pair: {unknown}") from None
        except EventInThePast as exc:
            raise HTTPException(409, str(exc)) from None
        return event_json(stored)

    @api.delete("")
    async def clear_events() -> dict[str, int]:
        return {"cleared": broker.market.events.clear()}

    return api
