"""Workloads: the timeline's quote, order and api steps, calling the system (never the mock).

Every call is recorded as a ``SystemCall`` with the second it started, how it ended and how
long it took. Rate workloads are open-loop: calls start on schedule whether or not earlier
ones have finished, as real traffic does, so a stalled system shows up as unfinished calls
rather than as a politely slowed-down load.

``api`` steps call the gateway over real HTTP, as a dashboard or an operator's script would:
200 is ``ok``, 503 with ``Retry-After`` is ``refused`` (the system shed load and said when to
come back), any other status ``HTTP<status>``, and a transport error its type's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from harness.result import SystemCall, TickSeen
from harness.scenario.model import ApiLoad, OrderLoad, QuoteLoad, Step
from mocks.market import LISTINGS
from system.broker import OrderRequest
from system.service import TradingService

DEFAULT_CODES = [code for code, _, _ in LISTINGS]


@dataclass(frozen=True)
class PlacedOrder:
    """An order a workload asked for; its quantity is unique within the run, so the broker's
    booked orders map back to exactly one client order id."""

    client_order_id: str
    code: str
    quantity: int
    side: str


@dataclass
class History:
    """Everything the workloads did, on scenario seconds."""

    origin: float
    calls: list[SystemCall] = field(default_factory=list)
    orders: list[PlacedOrder] = field(default_factory=list)
    running: dict[asyncio.Task[None], tuple[float, str, str]] = field(default_factory=dict)
    ticks: list[TickSeen] = field(default_factory=list)  # what watch steps' dashboards got
    _next_quantity: int = 1

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.origin

    def quantity(self) -> int:
        quantity = self._next_quantity
        self._next_quantity += 1
        return quantity

    def unfinished(self) -> None:
        """Record calls still running (the caller cancels them) as unfinished."""
        for started, workload, operation in self.running.values():
            self.calls.append(SystemCall(started, workload, operation, "unfinished", None))
        self.running.clear()


class Workloads:
    """Runs the quote and order steps of one scenario against one service."""

    def __init__(
        self,
        service: TradingService,
        history: History,
        end: float,
        barrier: Callable[[float], Awaitable[None]] | None = None,
        gateway_url: str | None = None,
    ) -> None:
        self.service = service
        self.history = history
        self.end = end
        self.barrier = barrier
        self.gateway_url = gateway_url
        self._http: httpx.AsyncClient | None = None

    async def run(self, step: Step) -> None:
        """Drive ``step`` until it ends; calls it started may still be running after."""
        load = step.quotes or step.orders or step.api
        assert load is not None
        codes = [""] if isinstance(load, ApiLoad) else load.codes or DEFAULT_CODES
        operation = step.kind.removesuffix("s")  # quotes → quote, orders → order, api
        make: Callable[[str, int], Callable[[], Awaitable[object]]]
        if isinstance(load, ApiLoad):
            make = self._api(load)
        elif isinstance(load, QuoteLoad):
            make = self._quote
        else:
            make = self._order(load, step.label)
        if load.burst is not None:
            if self.barrier is not None:
                await self.barrier(step.at)
            for i in range(load.burst):
                self._start(step.label, operation, make(codes[i % len(codes)], i))
            return
        assert load.rate is not None
        stop = min(step.end or self.end, self.end)
        i = 0
        while True:
            due = step.at + i / load.rate
            if due >= stop:
                return
            await _sleep_until(self.history, due)
            if self.barrier is not None:
                await self.barrier(due)
            self._start(step.label, operation, make(codes[i % len(codes)], i))
            i += 1

    def _api(self, load: ApiLoad) -> Callable[[str, int], Callable[[], Awaitable[object]]]:
        if self.gateway_url is None:
            raise RuntimeError("api steps need the gateway served; the model requires it")
        if self._http is None:
            # No pool limit: a burst of N is N concurrent requests, as N callers would send.
            self._http = httpx.AsyncClient(
                base_url=self.gateway_url,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
                timeout=httpx.Timeout(300.0),
            )
        http = self._http

        def make(_: str, __: int) -> Callable[[], Awaitable[object]]:
            return lambda: get_from_gateway(http, load.path)

        return make

    def _quote(self, code: str, _: int) -> Callable[[], Awaitable[object]]:
        return lambda: self.service.quote(code)

    def _order(
        self, load: OrderLoad, label: str
    ) -> Callable[[str, int], Callable[[], Awaitable[object]]]:
        def make(code: str, i: int) -> Callable[[], Awaitable[object]]:
            order = PlacedOrder(f"{label}-{i + 1}", code, self.history.quantity(), load.side)
            self.history.orders.append(order)

            async def place() -> object:
                price = None
                if load.type == "limit":  # at the current price: marketable, so it fills
                    price = (await self.service.quote(code)).price
                request = OrderRequest(
                    order.client_order_id, load.side, code, order.quantity, price
                )
                return await self.service.place_order(request)

            return place

        return make

    def _start(self, workload: str, operation: str, call: Callable[[], Awaitable[object]]) -> None:
        history = self.history
        started = history.now()

        async def record() -> None:
            try:
                await call()
                outcome = "ok"
            except asyncio.CancelledError:
                raise
            except ApiAnswer as exc:
                outcome = exc.outcome
            except Exception as exc:  # every failure is an observation, not a crash
                outcome = type(exc).__name__
            history.running.pop(task, None)
            history.calls.append(
                SystemCall(started, workload, operation, outcome, history.now() - started)
            )

        task = asyncio.create_task(record(), name=f"{workload}:{operation}")
        history.running[task] = (started, workload, operation)

    async def stop(self) -> None:
        """Cancel every call still running and record it as unfinished."""
        tasks = list(self.history.running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.history.unfinished()
        if self._http is not None:
            await self._http.aclose()


async def get_from_gateway(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """A GET through the gateway's HTTP API: its 200 answer, else ``ApiAnswer`` saying how
    it answered (``refused``: a 503 with Retry-After; ``HTTP<status>`` otherwise)."""
    response = await http.get(path)
    if response.status_code == 200:
        return response
    if response.status_code == 503 and "retry-after" in response.headers:
        raise ApiAnswer("refused")
    raise ApiAnswer(f"HTTP{response.status_code}")


class ApiAnswer(Exception):
    """The gateway answered something else than 200: ``outcome`` is ``refused`` (a 503 with
    Retry-After) or ``HTTP<status>``."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


async def _sleep_until(history: History, at: float) -> None:
    delay = at - history.now()
    if delay > 0:
        await asyncio.sleep(delay)
