"""An async client for a mock's control plane, for the harness and hand-written tests."""

from __future__ import annotations

import functools
import ssl
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from mocks.control import PREFIX, TOKEN_HEADER, problems_line
from mocks.faults import FaultRule, FeedFaultRule, ProxyFaultRule
from mocks.journal import Entry, FeedEntry, ProxyEntry
from mocks.market_events import MARKET_EVENT, MarketEvent

R = TypeVar("R", FaultRule, FeedFaultRule, ProxyFaultRule)


class ControlError(Exception):
    """The control plane refused a request; the message carries its reason."""

    def __init__(self, method: str, url: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {detail}")
        self.status = status
        self.detail = detail


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default verification context, built once per process (loading the CA bundle
    costs ~15 ms per client otherwise; the harness makes one client per scenario run)."""
    return httpx.create_ssl_context()


def _readable(detail: object) -> str:
    """An error's detail as a line: FastAPI's list of validation errors becomes
    "query.kind: Input should be 'connect', ...; ..."."""
    if isinstance(detail, list) and all(isinstance(error, dict) for error in detail):
        return problems_line(detail)
    return str(detail)


class _Control:
    """What every mock's control plane offers: health, clock, rule listing, reset."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        headers = {TOKEN_HEADER: token} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + PREFIX,
            headers=headers,
            transport=transport,
            timeout=timeout,
            verify=_tls(),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                detail = _readable(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            raise ControlError(method, str(response.url), response.status_code, detail)
        return response.json()

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/health")
        return result

    async def now(self) -> float:
        """The mock's clock: seconds since it started or was last reset."""
        return float((await self._call("GET", "/clock"))["now"])

    async def _add_rule(self, model: type[R], rule: R | dict[str, Any]) -> R:
        """Check ``rule`` here (a bad one fails before any request), post it, return it
        as stored."""
        checked = rule if isinstance(rule, model) else model.model_validate(rule)
        payload = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
        return model.model_validate(await self._call("POST", "/faults", json=payload))

    async def _journal_rows(self, since: int, **filters: str | int | None) -> list[Any]:
        """``GET /journal`` rows with ``seq > since``, by the filters that are given."""
        params = {"since": since, **{k: v for k, v in filters.items() if v is not None}}
        rows: list[Any] = (await self._call("GET", "/journal", params=params))["entries"]
        return rows

    async def faults(self) -> list[dict[str, Any]]:
        """Active rules with their ``matched`` and ``applied`` counters."""
        result: list[dict[str, Any]] = await self._call("GET", "/faults")
        return result

    async def remove_fault(self, rule_id: str) -> None:
        await self._call("DELETE", f"/faults/{rule_id}")

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def reset(self) -> None:
        await self._call("POST", "/reset")


class ControlClient(_Control):
    """Rules, journal, clock and reset of an HTTP mock (the broker)."""

    async def add_fault(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        """Add a rule; returns it as stored (with its id and any ``for`` pinned to times)."""
        return await self._add_rule(FaultRule, rule)

    async def journal(
        self,
        *,
        since: int = 0,
        path: str | None = None,
        method: str | None = None,
        tr_id: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """Journal entries; ``code`` matches the broker's code or its meaning
        (``budget-exceeded``), ``kind`` what the request was (``order``)."""
        rows = await self._journal_rows(
            since, path=path, method=method, tr_id=tr_id, code=code, kind=kind, limit=limit
        )
        return [Entry(**row) for row in rows]


class BrokerControl(ControlClient):
    """The broker mock's control plane: the generic one plus broker world state."""

    async def config(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/broker/config")
        return result

    async def configure(self, **changes: Any) -> dict[str, Any]:
        """Change run-time settings, e.g. ``gateway_error_status=200`` or budgets."""
        result: dict[str, Any] = await self._call("PATCH", "/broker/config", json=changes)
        return result

    async def expire_tokens(self) -> int:
        """Expire every live token now; returns how many were live."""
        return int((await self._call("POST", "/broker/tokens/expire"))["expired"])

    async def tokens_issued(self) -> int:
        return int((await self._call("GET", "/broker/tokens"))["issued"])

    async def add_market_event(self, event: MarketEvent | dict[str, Any]) -> MarketEvent:
        """Inject a market event (``{"kind": "vi", "code": "005930", "at": 120}``, or a
        ``mocks.market_events`` model); checked here first, so a bad one fails before any
        request. Returns it as stored, its ``at`` pinned to the next second if not given."""
        checked = MARKET_EVENT.validate_python(event) if isinstance(event, dict) else event
        payload = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
        stored = await self._call("POST", "/market/events", json=payload)
        return MARKET_EVENT.validate_python(stored)

    async def market_events(self) -> list[MarketEvent]:
        """The injected market events, as stored."""
        rows: list[Any] = await self._call("GET", "/market/events")
        return [MARKET_EVENT.validate_python(row) for row in rows]

    async def account_orders(self) -> list[dict[str, Any]]:
        """Every order in the broker's books, oldest first: odno, side, code, quantity,
        price, filled_quantity, fill_price, ``at`` (mock clock seconds) and ``day``."""
        rows: list[dict[str, Any]] = await self._call("GET", "/account/orders")
        return rows

    async def clear_market_events(self) -> int:
        """Forget every market event (prices return to the undisturbed paths, also for
        past steps); returns how many there were."""
        return int((await self._call("DELETE", "/market/events"))["cleared"])


class FeedControl(_Control):
    """The realtime feed mock's control plane: feed fault rules, its journal, connections."""

    async def add_fault(self, rule: FeedFaultRule | dict[str, Any]) -> FeedFaultRule:
        """Add a feed rule; returns it as stored (with its id and any ``for`` pinned)."""
        return await self._add_rule(FeedFaultRule, rule)

    async def journal(
        self,
        *,
        since: int = 0,
        kind: str | None = None,
        connection: int | None = None,
        tr_id: str | None = None,
        tr_key: str | None = None,
        code: str | None = None,
        limit: int | None = None,
    ) -> list[FeedEntry]:
        rows = await self._journal_rows(
            since,
            kind=kind,
            connection=connection,
            tr_id=tr_id,
            tr_key=tr_key,
            code=code,
            limit=limit,
        )
        return [FeedEntry(**row) for row in rows]

    async def connections(self) -> list[dict[str, Any]]:
        """Open connections: number, appkey fingerprint, subscriptions, stalled/reading."""
        result: list[dict[str, Any]] = await self._call("GET", "/feed/connections")
        return result

    async def config(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/feed/config")
        return result


class ProxyControl(_Control):
    """The TCP fault proxy's control plane (its own HTTP port, ``RunningProxy.control_url``):
    proxy fault rules, its journal, its open connections."""

    async def add_fault(self, rule: ProxyFaultRule | dict[str, Any]) -> ProxyFaultRule:
        """Add a proxy rule; returns it as stored (with its id and any ``for`` pinned)."""
        return await self._add_rule(ProxyFaultRule, rule)

    async def journal(
        self,
        *,
        since: int = 0,
        kind: str | None = None,
        connection: int | None = None,
        how: str | None = None,
        fault: str | None = None,
        limit: int | None = None,
    ) -> list[ProxyEntry]:
        rows = await self._journal_rows(
            since, kind=kind, connection=connection, how=how, fault=fault, limit=limit
        )
        return [ProxyEntry(**row) for row in rows]

    async def connections(self) -> list[dict[str, Any]]:
        """Open connections: number, opened_at, client address, bytes forwarded each way."""
        result: list[dict[str, Any]] = await self._call("GET", "/proxy/connections")
        return result

    async def config(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/proxy/config")
        return result
