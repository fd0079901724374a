"""The fault control plane every mock carries: rules, journal, clock and reset over HTTP.

It lives under a reserved prefix (``/_squall``) on the mock's own port. Without a control
token it answers loopback clients only: a mock bound to a shared interface must not let the
network reconfigure it. With a token, every caller must present it in ``x-squall-control-token``.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from pydantic import ValidationError

from mocks.clock import MockClock
from mocks.faults import FaultPlan, FaultRule, FeedFaultRule, ProxyFaultRule
from mocks.journal import BoundedLog, Entry, FeedEntry, Journal, ProxyEntry

PREFIX = "/_squall"
TOKEN_HEADER = "x-squall-control-token"


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


J = TypeVar("J", bound=BoundedLog[Any])


class BaseControlPlane(Generic[J]):
    """The fault plan, journal and clock of one mock, and what a reset means for it.

    Each kind of mock fills in its rules and its journal: ``rule_model`` is what
    ``POST /faults`` accepts, ``new_journal`` makes its journal, and ``journal_query``
    answers ``GET /journal``, its parameters being the journal's own filters. HTTP mocks
    use ``ControlPlane``; the realtime feed and the TCP proxy their own.
    """

    rule_model: ClassVar[type[FaultRule] | type[FeedFaultRule] | type[ProxyFaultRule]]
    default_name: ClassVar[str]  # the mock's name in messages when none is given

    def __init__(
        self,
        *,
        name: str | None = None,
        seed: int = 0,
        control_token: str | None = None,
        clock: MockClock | None = None,
    ) -> None:
        self.name = name or self.default_name
        self.seed = seed
        self.control_token = control_token
        self.clock = clock or MockClock()
        self.faults = FaultPlan(seed)
        self.journal = self.new_journal()
        self._reset_hooks: list[Callable[[], None]] = []

    def new_journal(self) -> J:
        raise NotImplementedError

    # async, as authorize is: a plain def dependency would run in a worker thread.
    async def journal_query(self) -> Sequence[Entry | FeedEntry | ProxyEntry]:
        """The entries ``GET /journal`` answers; a subclass adds its filters as parameters
        (FastAPI reads them from the signature: names, types, bounds)."""
        raise NotImplementedError

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Back to the state at start: no rules, empty journal, clock at zero, world reseeded."""
        self.faults.reset()
        self.journal.clear()
        self.clock.start()
        for hook in self._reset_hooks:
            hook()

    # async on purpose: FastAPI runs a plain def dependency in a worker thread, which
    # looptime cannot see, so virtual time would jump 1-10 s during every control call.
    async def authorize(self, request: Request) -> None:
        if self.control_token is not None:
            given = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.control_token.encode()):
                raise HTTPException(
                    403,
                    f"the {self.name} control plane needs the control token in the "
                    f"{TOKEN_HEADER} header (the one the mock was started with)",
                )
            return
        host = request.client.host if request.client else None
        if not _is_loopback(host):
            raise HTTPException(
                403,
                f"the {self.name} control plane answers loopback clients only (you are "
                f"{host}); start the mock with a control token to allow remote control",
            )

    def router(self) -> APIRouter:
        router = APIRouter(prefix=PREFIX, dependencies=[Depends(self.authorize)])
        plane = self

        @router.get("/health")
        async def health() -> dict[str, Any]:
            return {"mock": plane.name, "status": "ok", "now": plane.clock.now()}

        @router.get("/clock")
        async def clock() -> dict[str, float]:
            return {"now": plane.clock.now()}

        @router.get("/faults")
        async def list_faults() -> list[dict[str, object]]:
            return plane.faults.rules()

        @router.post("/faults", status_code=201)
        async def add_fault(request: Request) -> dict[str, Any]:
            payload = await json_body(request, "fault rule")
            try:
                rule = plane.rule_model.model_validate(payload)
            except ValidationError as exc:
                raise HTTPException(422, validation_summary(exc, "fault rule")) from None
            try:
                stored = plane.faults.add(rule, plane.clock.now())
            except ValueError as exc:
                raise HTTPException(409, str(exc)) from None
            return stored.model_dump(mode="json", by_alias=True, exclude_none=True)

        @router.delete("/faults/{rule_id}")
        async def remove_fault(rule_id: str) -> dict[str, bool]:
            if not plane.faults.remove(rule_id):
                raise HTTPException(404, f"no fault rule with id {rule_id!r}; GET {PREFIX}/faults")
            return {"removed": True}

        @router.delete("/faults")
        async def clear_faults() -> dict[str, bool]:
            plane.faults.clear()
            return {"cleared": True}

        @router.get("/journal")
        async def journal(
            # A default, not Annotated: postponed annotations can't name ``plane``.
            entries: Sequence[Any] = Depends(plane.journal_query),
        ) -> dict[str, Any]:
            # ``dropped``: how many of the oldest entries the journal's bound let go.
            return {
                "entries": [entry.to_json() for entry in entries],
                "dropped": plane.journal.dropped,
            }

        @router.post("/reset")
        async def reset() -> dict[str, bool]:
            plane.reset()
            return {"reset": True}

        return router


class ControlPlane(BaseControlPlane[Journal]):
    """The control plane of an HTTP mock (the broker): HTTP fault rules, one entry a request."""

    rule_model = FaultRule
    default_name = "broker"

    def new_journal(self) -> Journal:
        return Journal()

    async def journal_query(
        self,
        since: Annotated[int, Query(ge=0)] = 0,
        path: str | None = None,
        method: str | None = None,
        tr_id: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[Entry]:
        return self.journal.entries(
            since=since,
            path=path,
            method=method,
            tr_id=tr_id,
            code=code,
            kind=kind,
            limit=limit,
        )


def mock_app(
    title: str,
    plane: BaseControlPlane[Any],
    *,
    shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """A mock's FastAPI app with its control plane mounted: the plane's clock starts when
    the app does (``shutdown`` runs when it stops), and the API docs sit under the control
    prefix, out of the way of the protocol's own paths."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        plane.clock.start()
        yield
        if shutdown is not None:
            await shutdown()

    app = FastAPI(
        title=title,
        lifespan=lifespan,
        docs_url=f"{PREFIX}/docs",
        openapi_url=f"{PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.control = plane
    app.include_router(plane.router())
    return app


async def json_body(request: Request, what: str) -> Any:
    """The request's body as JSON; a 400 naming ``what`` when it is not JSON."""
    try:
        return await request.json()
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested absurdly deep
        raise HTTPException(400, f"the {what} is not valid JSON: {exc}") from None


def validation_summary(exc: ValidationError, what: str) -> str:
    """A model's validation errors as one line: "invalid <what>: field: problem; ..."."""
    return f"invalid {what}: " + problems_line(exc.errors(), what)


def problems_line(errors: Iterable[Mapping[str, Any]], what: str = "") -> str:
    """Validation errors (pydantic's, or the ``detail`` of FastAPI's 422) as one line:
    "field: problem; ..."; ``what`` names the place of an error about the whole input."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ())) or what}: {error.get('msg')}"
        for error in errors
    )
