"""``LiveStack``: the simulated world, the trading system and its gateway, on real time, in a
thread of their own, for Playwright to watch.

Decisions, and why:

- **A thread with its own event loop.** pytest-playwright's sync API owns the test's thread
  (it drives the browser from a loop of its own there), so the stack cannot run in it.
  ``LiveStack`` runs one asyncio loop in a daemon thread; the test reaches it through
  ``call(coroutine)`` (``asyncio.run_coroutine_threadsafe``), which is also how faults are
  injected through the mocks' control-plane clients.
- **Real time.** The browser is a process outside the loop; on virtual time (looptime) the
  clock would jump whenever the loop waits on it (ENVIRONMENT.md). So the timings below are
  short instead: a stall is noticed in 2 s, the feed reconnects within a second, the gateway
  pings every second and falls back to REST quotes every second.
- **Every context entered and left by one task.** The world and the system are each held by
  a task (``_Held``) that enters the context manager, waits to be released, then leaves it:
  the contexts start tasks and cancel scopes of their own, which must begin and end in the
  same task.
- **A gateway restart is a process restart.** In production the gateway runs inside the
  trading system's process (``squall system``): when it restarts, the trading service, the
  feed client and the gateway all go, and a new process starts with nothing but its
  settings, listening on the same port. So ``stop_gateway`` leaves ``running_system`` and
  ``serve`` (a graceful stop: clients get close code 1001, as from SIGTERM in a deploy), and
  ``start_gateway`` builds a fresh system and serves it on the port the page knows. The
  world (broker and feed) stays up, as the real broker does. Nothing of the old gateway
  survives, so a page showing prices again must have resubscribed by itself.
- **One stack per test** (function-scoped fixture): starting it takes about a second, and
  a test that breaks the feed or restarts the gateway cannot leak its faults or its state
  into the next one.
- **Trading on demand, late in the session.** ``LiveStack(trading=..., operator_token=...)``
  runs the system with its trading desk and an operator token for the kill switch. The
  mocks' wall clock then starts at 15:00 KST (``TRADING_WALL_HOUR``) and the desk reads
  that clock, as a scenario's desk reads the mocks' own: the closing bet's window
  (15:00-15:20) is open from the first second. The market still starts at its first step.
  On real time the default detectors say nothing for minutes (the VCP detector's first
  signal on seeds 5 and 7 comes after about 560 s of market; the closing bet wants half a
  million shares traded, which a session seconds old has not): ``LiveTrading`` is the
  system's ``TradingSettings`` with the closing bet's volume floor lowered to a seconds-old
  session's, so a test makes a signal when it wants one with a market event (a gap up of
  more than 5 %, ``market_event``), and the system's own detector, risk gate and trading
  service turn it into an order at the mock broker.
- **Reading the system from the test's thread.** ``orders()``, ``desk_metrics()``,
  ``positions()``, ``realised()`` and ``broker_orders()`` run on the stack's loop
  (``call``), so a test never reads the service's or the desk's state while the loop is
  changing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from harness.stack import system_settings
from mocks.broker import BrokerConfig
from mocks.faults import FaultRule, FeedFaultRule
from mocks.feed import FeedConfig
from mocks.journal import Entry
from mocks.market_events import MarketEvent
from mocks.world import World, serve_world
from system.app import System, running_system
from system.broker.clock import KST
from system.gateway import GatewayServer, serve
from system.service import OrderRecord
from system.trading.desk import Desk
from system.trading.detectors import ClosingBetDetector, ClosingBetParams, Detector, WallClock
from system.trading.positions import Position
from system.trading.settings import TradingSettings

T = TypeVar("T")

HOST = "127.0.0.1"

# The mock feed's PINGPONG heartbeat: well inside the client's stall window, so only a
# fault makes the feed fall silent.
FEED_PING_INTERVAL_S = 0.5
# The system's policies, shortened so each fault plays out in a few seconds of real time.
FEED_SETTINGS: dict[str, Any] = {
    "stall_after_s": 2.0,  # silence this long is a stall
    "backoff_base_s": 0.2,  # first reconnect after 0.1-0.2 s ...
    "backoff_max_s": 1.0,  # ... and never more than 1 s apart while the feed refuses
    "connect_timeout_s": 2.0,
}
GATEWAY_SETTINGS: dict[str, Any] = {
    "heartbeat_interval_s": 1.0,  # the page gives up on a silent gateway after 2.5 of these
    "pong_timeout_s": 3.0,
    "rest_fallback_interval_s": 1.0,  # stale REST prices every second while the feed is down
    "close_timeout_s": 1.0,
}
# An order the broker keeps failing is given up after 3 s, not 2 min, so it is settled
# (failed, or of unknown outcome) within a test's few seconds.
SERVICE_SETTINGS: dict[str, Any] = {
    "order_deadline_s": 3.0,
    "retry_wait_s": 0.5,
    "reconcile_delay_s": 0.5,
}
# How long one call into the stack's loop may take before the test gives up on it.
CALL_TIMEOUT_S = 20.0
# With a trading desk, the mocks' wall clock starts at this hour (KST) of today: the start
# of the closing bet's window (15:00-15:20, ``ClosingBetParams``), open for 20 min.
TRADING_WALL_HOUR = 15
# Where orders go at the broker (the order-cash endpoint, buy and sell).
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"


def eventually(
    read: Callable[[], T], ok: Callable[[T], bool], what: str, timeout_s: float = 10.0
) -> T:
    """``read()`` every 0.1 s until ``ok`` holds for its value, which is returned; after
    ``timeout_s`` an AssertionError says ``what`` was expected and what was read last.
    (Playwright's ``expect`` waits for the page; this waits for the stack.)"""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {what} within {timeout_s} s; last read: {value!r}")
        time.sleep(0.1)


class LiveTrading(TradingSettings):
    """The system's trading settings, with the closing bet fitted to a session seconds old.

    The only change: the closing bet's day-volume floor (500,000 shares by default) is
    ``min_volume``, since the mock market trades a few hundred shares a second. Its window,
    its rise (at least 5 % on the day) and its nearness to the day's high stay the
    system's, and every other detector is built as the system builds it.
    """

    min_volume: int = 0

    def build_detectors(self, wall: WallClock) -> list[Detector]:
        return [
            ClosingBetDetector(wall, ClosingBetParams(min_volume=self.min_volume))
            if isinstance(detector, ClosingBetDetector)
            else detector
            for detector in super().build_detectors(wall)
        ]


def _desk(system: System) -> Desk:
    if system.desk is None:
        raise RuntimeError("the system runs no trading desk: start it with trading=")
    return system.desk


@dataclass
class _Held(Generic[T]):
    """An entered async context, kept open by ``task`` until ``release``."""

    value: T
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def release(self) -> None:
        self.stop.set()
        await self.task  # raises what leaving the context raised


async def _hold(manager: AbstractAsyncContextManager[T], name: str) -> _Held[T]:
    entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def keep() -> None:
        try:
            async with manager as value:
                entered.set_result(value)
                await stop.wait()
        except BaseException as exc:
            if entered.done():
                raise
            entered.set_exception(exc)  # a failed start is the caller's error, not the task's

    task = asyncio.get_running_loop().create_task(keep(), name=name)
    return _Held(await entered, stop, task)


class LiveStack:
    """The world (mock broker and feed), the system and its gateway, running in a thread.

    ``start()`` then ``url`` (the dashboard is at ``url + "/"``); ``feed_fault(rule)`` adds
    a fault to the mock feed, ``broker_fault(rule)`` one to the mock broker,
    ``market_event(event)`` changes the simulated market; ``stop_gateway()`` /
    ``start_gateway()`` restart the system's process on the same port; ``stop()`` tears
    everything down.

    ``trading`` runs the system's trading desk with those settings (``LiveTrading`` for
    signals on demand; see the module's docstring) and ``operator_token`` is the gateway's
    token for the kill switch (None: the gateway has none, and refuses every switch).
    ``orders()``, ``desk_metrics()``, ``positions()``, ``realised()`` and
    ``broker_orders()`` say what the system traded.
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        trading: TradingSettings | None = None,
        operator_token: str | None = None,
    ) -> None:
        self.seed = seed
        self.trading = trading
        self.operator_token = operator_token
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="squall-e2e-stack", daemon=True)
        self._world: _Held[World] | None = None
        self._gateway: _Held[GatewayServer] | None = None
        self._system: System | None = None  # the running system's parts, with the gateway
        self._wall_origin = (
            datetime.now(KST).replace(hour=TRADING_WALL_HOUR, minute=0, second=0, microsecond=0)
            if trading is not None
            else None
        )
        self._world_zero = 0.0  # the loop time the mocks' clocks started at (to a few ms)
        self._port = 0  # 0 until the first gateway picked a free port; then kept
        self.gateway_starts = 0

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        try:
            self._world = self.call(_hold(self._serve_world(), "e2e world"))
            self.start_gateway()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the system, then the world, then the loop; safe to call more than once."""
        if not self._thread.is_alive():
            return
        try:
            self.call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CALL_TIMEOUT_S)
            if not self._thread.is_alive():
                self._loop.close()

    def start_gateway(self) -> None:
        """A new system process serving its gateway on the stack's port (a free one at first)."""
        if self._gateway is not None:
            raise RuntimeError("the gateway is running; stop_gateway() first")
        self._gateway = self.call(_hold(self._serve_system(), "e2e system"))
        self._port = self._gateway.value.port
        self.gateway_starts += 1

    def stop_gateway(self) -> None:
        """The system's process stops: every page loses its socket (close 1001)."""
        held, self._gateway = self._gateway, None
        if held is not None:
            self.call(held.release())

    # -- what tests use -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The gateway's base URL, the same across restarts."""
        return f"http://{HOST}:{self._port}"

    @property
    def world(self) -> World:
        if self._world is None:
            raise RuntimeError("the stack is not started")
        return self._world.value

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run ``coroutine`` on the stack's loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def feed_fault(self, rule: dict[str, Any]) -> FeedFaultRule:
        """Add a fault rule to the mock feed (shape: ``mocks.faults.feed``)."""
        return self.call(self.world.feed_control.add_fault(rule))

    def broker_fault(self, rule: dict[str, Any]) -> FaultRule:
        """Add a fault rule to the mock broker (shape: ``mocks.faults.model``)."""
        return self.call(self.world.broker_control.add_fault(rule))

    def market_event(self, event: dict[str, Any]) -> MarketEvent:
        """Inject a market event (shape: ``mocks.market_events``), from the next step on
        unless it says ``at``."""
        return self.call(self.world.broker_control.add_market_event(event))

    def broker_orders(self) -> list[Entry]:
        """Every order request that reached the mock broker, faulted ones included."""
        return self.call(self.world.broker_control.journal(path=ORDER_PATH))

    def orders(self) -> list[OrderRecord]:
        """The trading service's order records (``TradingService.orders``)."""
        return self.call(self._on_system(lambda system: system.service.orders()))

    def desk_metrics(self) -> dict[str, float]:
        """The trading desk's counters (``Desk.metrics``: ``desk_updates``, ...)."""
        return self.call(self._on_system(lambda system: _desk(system).metrics()))

    def positions(self) -> list[Position]:
        """The trading desk's open positions, by code (``Book.positions``)."""
        return self.call(self._on_system(lambda system: _desk(system).book.positions()))

    def realised(self) -> int:
        """The trading desk's realised P&L, every day together (``Book.realised_total``)."""
        return self.call(self._on_system(lambda system: _desk(system).book.realised_total))

    # -- inside the loop ----------------------------------------------------------------

    async def _on_system(self, read: Callable[[System], T]) -> T:
        if self._system is None:
            raise RuntimeError("the system is not running: start_gateway() first")
        return read(self._system)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @contextlib.asynccontextmanager
    async def _serve_world(self) -> AsyncIterator[World]:
        async with serve_world(
            BrokerConfig(seed=self.seed),
            FeedConfig(seed=self.seed, ping_interval_s=FEED_PING_INTERVAL_S),
            host=HOST,
            wall_origin=self._wall_origin,
        ) as world:
            self._world_zero = asyncio.get_running_loop().time()
            yield world

    def _wall(self, at: float) -> datetime:
        """The mocks' KST wall time at loop time ``at``: what the desk's closing bet reads."""
        assert self._wall_origin is not None
        return self._wall_origin + timedelta(seconds=at - self._world_zero)

    @contextlib.asynccontextmanager
    async def _serve_system(self) -> AsyncIterator[GatewayServer]:
        # The wiring of `squall up` (harness/cli.py), with the short timings above.
        settings = system_settings(
            self.world,
            service=SERVICE_SETTINGS,
            feed=FEED_SETTINGS,
            gateway={
                **GATEWAY_SETTINGS,
                **({} if self.operator_token is None else {"operator_token": self.operator_token}),
            },
        )
        settings = dataclasses.replace(settings, trading=self.trading)
        wall = self._wall if self.trading is not None else None
        async with (
            running_system(settings, wall=wall) as system,
            serve(system.app, HOST, self._port) as gateway,
        ):
            self._system = system
            try:
                yield gateway
            finally:
                self._system = None

    async def _shutdown(self) -> None:
        gateway, self._gateway = self._gateway, None
        world, self._world = self._world, None
        try:
            for held in (gateway, world):
                if held is not None:
                    await held.release()
        finally:
            # Anything still pending would be destroyed with the loop and warn about it.
            current = asyncio.current_task()
            rest = [task for task in asyncio.all_tasks() if task is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            await self._loop.shutdown_asyncgens()
