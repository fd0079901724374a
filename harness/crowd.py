"""The ``load`` step: a crowd of users on the gateway, doing what the load tier's Locust users
do (``load/locustfile.py``), on the scenario's clock.

Why not Locust itself: Locust runs its users under gevent in processes of their own, on the
wall clock. A scenario runs in one asyncio loop, usually on virtual time, and its verdicts
must repeat from its seed. So the crowd is the same behaviour written for that loop: real
HTTP and WebSocket connections to the served gateway, each user's think times drawn from
its own seeded generator. The load tier then runs the Locust users against any host, with
the same request types and thresholds.

Each request is recorded as a ``SystemCall`` of the step's workload (operation ``quote``,
``health``, ``ws-connect`` or ``ws-ping``), so the scenario's ``system_calls``,
``success_ratio`` and ``latency`` (with ``percentile: 95``) expectations read the load
figures. A request still running when its user leaves (the phase ends, or the shape lets
users go) may end within ``REQUEST_TIMEOUT_S``, as Locust's ``--stop-timeout`` allows; one
still running then is recorded ``unfinished``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from harness.result import SystemCall
from harness.scenario.model import LoadPhase, Step
from harness.workload import ApiAnswer, History, get_from_gateway
from load.shapes import plan

DEFAULT_CODES = ("005930", "000660")
# How long one request may take before the user gives up on it, as Locust's users do.
REQUEST_TIMEOUT_S = 30.0
# Quotes are asked twice as often as health, as RestUser's task weights say (4 to 2).
QUOTE_SHARE = 2 / 3


class Crowd:
    """Runs the load steps of one scenario against one served gateway."""

    def __init__(self, gateway_url: str, history: History, end: float, seed: int) -> None:
        self.gateway_url = gateway_url
        self.ws_url = "ws" + gateway_url.removeprefix("http") + "/ws"
        self.history = history
        self.end = end
        self.seed = seed
        self._stopping: set[str] = set()  # the steps whose users are leaving

    async def run(self, step: Step) -> None:
        """Keep ``step``'s users on, as its shape says second by second, until it ends."""
        phase = step.load
        assert phase is not None
        stop = min(step.end or self.end, self.end)
        length = stop - step.at
        schedule = None if phase.shape == "constant" else plan(phase.shape, phase.users, length)

        def target(t: float) -> int:
            if schedule is None:
                return phase.users
            step = schedule(t)
            return 0 if step is None else step[0]

        users: dict[int, asyncio.Task[None]] = {}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(
            base_url=self.gateway_url, limits=limits, timeout=REQUEST_TIMEOUT_S
        ) as http:
            try:
                second = 0
                while self.history.now() < stop:
                    wanted = target(self.history.now() - step.at)
                    for number in range(len(users) + 1, wanted + 1):
                        users[number] = asyncio.create_task(
                            self._user(step.label, number, phase, http),
                            name=f"{step.label}:user-{number}",
                        )
                    for number in range(len(users), wanted, -1):
                        await _cancel(users.pop(number))
                    second += 1
                    await asyncio.sleep(max(0.0, min(step.at + second, stop) - self.history.now()))
                # As Locust's --stop-timeout: no new requests; the ones on their way may end.
                self._stopping.add(step.label)
                grace = min(REQUEST_TIMEOUT_S, self.end - self.history.now())
                if users and grace > 0:
                    await asyncio.wait(users.values(), timeout=grace)
            finally:
                for task in users.values():
                    task.cancel()
                await asyncio.gather(*users.values(), return_exceptions=True)

    async def _user(
        self, label: str, number: int, phase: LoadPhase, http: httpx.AsyncClient
    ) -> None:
        rng = random.Random(f"{self.seed}:{label}:{number}")
        codes = phase.codes or list(DEFAULT_CODES)
        kind = phase.kinds[(number - 1) % len(phase.kinds)]
        if kind == "rest":
            await self._rest_user(label, rng, phase, http, codes)
        else:
            await self._dashboard_user(label, rng, phase, codes[(number - 1) % len(codes)])

    async def _rest_user(
        self,
        label: str,
        rng: random.Random,
        phase: LoadPhase,
        http: httpx.AsyncClient,
        codes: list[str],
    ) -> None:
        while True:
            await asyncio.sleep(_think(rng, phase))
            if label in self._stopping:
                return
            if rng.random() < QUOTE_SHARE:
                path, operation = f"/api/quotes/{rng.choice(codes)}", "quote"
            else:
                path, operation = "/health", "health"
            await self._timed(label, operation, functools.partial(get_from_gateway, http, path))

    async def _dashboard_user(
        self, label: str, rng: random.Random, phase: LoadPhase, code: str
    ) -> None:
        while label not in self._stopping:
            opened, ws = await self._timed(label, "ws-connect", functools.partial(self._open, code))
            if not opened:
                await asyncio.sleep(_think(rng, phase))
                continue
            pongs: asyncio.Queue[bool] = asyncio.Queue()
            reader = asyncio.create_task(_read(ws, pongs))
            try:
                while not reader.done():
                    await asyncio.sleep(_think(rng, phase))
                    if label in self._stopping:
                        return
                    answered, _ = await self._timed(
                        label, "ws-ping", functools.partial(_ping, ws, pongs)
                    )
                    if not answered:
                        break  # the connection is no good: a new one, as the page does
            finally:
                reader.cancel()
                with contextlib.suppress(Exception):
                    await ws.close()
                await asyncio.gather(reader, return_exceptions=True)

    async def _open(self, code: str) -> ClientConnection:
        ws = await connect(self.ws_url, ping_interval=None, open_timeout=REQUEST_TIMEOUT_S)
        try:
            await ws.send(json.dumps({"type": "subscribe", "ticker": code}))
            await ws.send(json.dumps({"type": "subscribe", "topic": "signals"}))
        except Exception:
            await ws.close()  # a socket half set up is not left behind
            raise
        return ws

    async def _timed(
        self, label: str, operation: str, call: Callable[[], Awaitable[Any]]
    ) -> tuple[bool, Any]:
        """Whether ``call`` succeeded and its result, recorded as one system call."""
        history = self.history
        started = history.now()
        result: Any = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                result = await call()
            outcome = "ok"
        except asyncio.CancelledError:
            history.calls.append(SystemCall(started, label, operation, "unfinished", None))
            raise
        except ApiAnswer as answer:
            outcome = answer.outcome
        except Exception as exc:  # every failure is an observation, not a crash
            outcome = _outcome_of(exc)
        history.calls.append(
            SystemCall(started, label, operation, outcome, history.now() - started)
        )
        return outcome == "ok", result


def _outcome_of(error: Exception) -> str:
    """A failed request in the scenario vocabulary (``CALL_OUTCOMES``)."""
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(error, ConnectionClosed | ConnectionResetError | ConnectionError):
        if isinstance(error, ConnectionRefusedError):
            return "unreachable"
        return "closed"
    if isinstance(error, httpx.ConnectError | OSError | InvalidHandshake):
        return "unreachable"
    if isinstance(error, httpx.TransportError):
        return "closed"
    return "failed"


def _think(rng: random.Random, phase: LoadPhase) -> float:
    low, high = phase.think
    return rng.uniform(low, high)


async def _read(ws: ClientConnection, pongs: asyncio.Queue[bool]) -> None:
    """Everything the gateway sends, read as it comes (a tab that stops reading is another
    scenario's ``slow`` client): pings answered, pongs handed to the waiting ping (True),
    and the end of the connection too (False), so no ping waits for a pong that can't come."""
    try:
        async for raw in ws:
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong", "ts": message.get("ts")}))
                elif kind == "pong":
                    pongs.put_nowait(True)
    finally:
        pongs.put_nowait(False)


async def _ping(ws: ClientConnection, pongs: asyncio.Queue[bool]) -> None:
    while not pongs.empty():  # a late pong of an earlier ping, or the end
        if not pongs.get_nowait():
            raise ConnectionError("the gateway closed the WebSocket")
    await ws.send(json.dumps({"type": "ping"}))
    if not await pongs.get():
        raise ConnectionError("the gateway closed the WebSocket before answering the ping")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
