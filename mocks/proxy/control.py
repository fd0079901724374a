"""The proxy's control plane: the shared one (``mocks.control``) with proxy rules and journal.

The proxied port carries raw TCP, so the plane has an HTTP port of its own.
``POST /_squall/faults`` takes ``ProxyFaultRule`` JSON; ``GET /_squall/journal`` answers
``ProxyEntry`` rows, filtered by ``kind``, ``connection``, ``how`` and ``fault``;
``GET /_squall/proxy/connections`` lists the open connections and
``GET /_squall/proxy/config`` the proxy's settings.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Query

from mocks.control import PREFIX, BaseControlPlane, mock_app
from mocks.faults import ProxyFaultRule
from mocks.journal import ProxyCloseHow, ProxyEntry, ProxyEntryKind, ProxyJournal
from mocks.proxy.config import ProxyConfig


class ProxyControlPlane(BaseControlPlane[ProxyJournal]):
    rule_model = ProxyFaultRule
    default_name = "proxy"

    def new_journal(self) -> ProxyJournal:
        return ProxyJournal()

    async def journal_query(
        self,
        since: Annotated[int, Query(ge=0)] = 0,
        kind: ProxyEntryKind | None = None,  # a typo is a 422 naming the kinds, not []
        connection: Annotated[int | None, Query(ge=1)] = None,
        how: ProxyCloseHow | None = None,
        fault: str | None = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[ProxyEntry]:
        return self.journal.entries(
            since=since, kind=kind, connection=connection, how=how, fault=fault, limit=limit
        )


class Inspectable(Protocol):
    """What the plane shows of the running proxy."""

    config: ProxyConfig

    def connections(self) -> list[dict[str, Any]]: ...


def create_control_app(plane: ProxyControlPlane, proxy: Inspectable) -> FastAPI:
    """The control plane's app: the shared routes plus the proxy's connections and config."""
    app = mock_app("Squall TCP fault proxy", plane)
    api = APIRouter(prefix=f"{PREFIX}/proxy", dependencies=[Depends(plane.authorize)])

    @api.get("/connections")
    async def connections() -> list[dict[str, Any]]:
        return proxy.connections()

    @api.get("/config")
    async def config() -> dict[str, Any]:
        return proxy.config.model_dump()

    app.include_router(api)
    app.state.proxy = proxy
    return app
