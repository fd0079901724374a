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

from mocks.clock import MockClock
from mocks.control import PREFIX, BaseControlPlane, mock_app
from mocks.faults import ProxyFaultRule
from mocks.journal import ProxyJournal
from mocks.proxy.config import ProxyConfig


class ProxyControlPlane(BaseControlPlane[ProxyJournal]):
    rule_model = ProxyFaultRule

    def __init__(
        self,
        *,
        seed: int = 0,
        control_token: str | None = None,
        clock: MockClock | None = None,
    ) -> None:
        super().__init__(
            name="proxy",
            journal=ProxyJournal(),
            seed=seed,
            control_token=control_token,
            clock=clock,
        )

    def add_journal_route(self, router: APIRouter) -> None:
        plane = self

        @router.get("/journal")
        async def proxy_journal(
            since: Annotated[int, Query(ge=0)] = 0,
            kind: str | None = None,
            connection: Annotated[int | None, Query(ge=1)] = None,
            how: str | None = None,
            fault: str | None = None,
            limit: Annotated[int | None, Query(ge=1)] = None,
        ) -> dict[str, Any]:
            return plane.journal_page(
                plane.journal.entries(
                    since=since,
                    kind=kind,
                    connection=connection,
                    how=how,
                    fault=fault,
                    limit=limit,
                )
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
