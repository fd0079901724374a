"""Squall's Locust users, against any gateway: ``locust -f load/locustfile.py --host URL``.

- ``RestUser`` — ``GET /health``, ``GET /api/quotes/{code}`` and, with the operator token,
  ``POST /api/orders`` (a fresh client order id each; a 409 "halted" is the system doing its
  job while an operator holds the kill switch, so it counts as a success).
- ``DashboardUser`` — what the dashboard page does: a WebSocket to ``/ws``, subscribed to a
  ticker and to signals, answering the gateway's heartbeat pings. Each round trip of its own
  ``{"type":"ping"}`` to the gateway's ``pong`` is reported through ``events.request`` as
  ``WS ping round trip``, with ``WS connect`` and ``WS subscribe``. On
  ``websockets.sync.client``: gevent-friendly, unlike any asyncio client inside Locust.
- ``OperatorUser`` — reads the kill switch; with the token, now and then engages it and
  releases it a moment later (every order in between is refused: intrusive on purpose).

Settings, from the environment (never printed):

- ``SQUALL_LOAD_OPERATOR_TOKEN`` — the gateway's operator token. Without it no order is
  placed and the kill switch is only read.
- ``SQUALL_LOAD_CODES`` — the tickers to quote and watch (default ``005930,000660``).
- ``SQUALL_LOAD_SHAPE`` (``ramp``, ``spike`` or ``soak``), ``SQUALL_LOAD_USERS`` and
  ``SQUALL_LOAD_DURATION_S`` — a load shape (``load/shapes.py``) instead of ``-u``/``-t``.
- Thresholds, checked at exit: ``load/thresholds.py``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, User, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner
from websockets.sync.client import ClientConnection, connect

from load import shapes, thresholds

log = logging.getLogger("squall.load")

OPERATOR_TOKEN = os.environ.get("SQUALL_LOAD_OPERATOR_TOKEN", "").strip()
WS_TIMEOUT_S = 10.0


def _codes() -> list[str]:
    raw = os.environ.get("SQUALL_LOAD_CODES", "005930,000660")
    codes = [code.strip() for code in raw.split(",") if code.strip()]
    if not codes or not all(len(c) == 6 and c.isascii() and c.isdigit() for c in codes):
        raise ValueError(
            f"SQUALL_LOAD_CODES={raw!r} must be KRX stock codes, six digits each, "
            "comma-separated, e.g. 005930,000660"
        )
    return codes


# The settings are read here, before any user starts: a wrong one stops the run with its
# message and exit 1, not a traceback, nor a verdict that comes only when the run ends.
try:
    CODES = _codes()
    THRESHOLDS = thresholds.Thresholds.from_env()
    # Locust runs any LoadTestShape it finds in this module: one only when asked for.
    _shape = shapes.from_env()
except ValueError as error:  # ThresholdError and LoadShapeError are ValueErrors
    raise SystemExit(f"squall load: {error}") from None
if _shape is not None:
    SquallShape = _shape


def _authorized() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _error_of(response: Any) -> str:
    """What a refused answer said (the gateway's ``error``), short; never the request."""
    try:
        said = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        said = response.text or ""
    return f"HTTP {response.status_code}: {said[:160]}"


class RestUser(HttpUser):
    """A client of the system's REST API."""

    weight = 3
    wait_time = between(0.5, 1.5)

    @task(2)
    def health(self) -> None:
        # 503 is the gateway saying "take me out of rotation": a failure under load.
        self.client.get("/health", name="/health")

    @task(4)
    def quote(self) -> None:
        code = random.choice(CODES)
        with self.client.get(
            f"/api/quotes/{code}", name="/api/quotes/[code]", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(_error_of(response))

    @task(1)
    def order(self) -> None:
        if not OPERATOR_TOKEN:
            return
        body = {
            "client_order_id": f"load-{uuid.uuid4().hex[:20]}",
            "side": "buy",
            "code": CODES[0],
            "quantity": 1,
        }
        with self.client.post(
            "/api/orders",
            json=body,
            headers=_authorized(),
            name="/api/orders",
            catch_response=True,
        ) as response:
            halted = response.status_code == 409 and _status(response) == "halted"
            if response.status_code in (201, 202) or halted:
                response.success()
            else:
                response.failure(_error_of(response))


def _status(response: Any) -> str:
    try:
        return str(response.json().get("status", ""))
    except ValueError:
        return ""


class OperatorUser(HttpUser):
    """An operator watching the kill switch, and pressing it now and then."""

    weight = 1
    fixed_count = 1  # one operator, however many users
    wait_time = between(2, 4)

    def on_start(self) -> None:
        # Once for sure: a short run must measure the switch, not leave it to chance.
        self.press_and_release()

    @task(5)
    def read(self) -> None:
        self.client.get("/api/kill-switch", name="/api/kill-switch")

    @task(1)
    def press_and_release(self) -> None:
        if not OPERATOR_TOKEN:
            return
        for command in ({"engaged": True, "detail": "load test"}, {"engaged": False}):
            with self.client.post(
                "/api/kill-switch",
                json=command,
                headers=_authorized(),
                name="/api/kill-switch",
                catch_response=True,
            ) as response:
                if response.status_code != 200:
                    response.failure(_error_of(response))
            time.sleep(0.5)


class DashboardUser(User):
    """The dashboard page's WebSocket, as a Locust user."""

    weight = 3
    wait_time = between(1, 2)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.ws: ClientConnection | None = None
        self.code = CODES[0]

    @property
    def ws_url(self) -> str:
        base = (self.host or "").rstrip("/")
        return "ws" + base.removeprefix("http") + "/ws"

    def on_start(self) -> None:
        started = time.perf_counter()
        try:
            self.ws = connect(
                self.ws_url, open_timeout=WS_TIMEOUT_S, ping_interval=None, legacy=True
            )
        except Exception as exc:  # every failure is a measurement, not a crash
            self._report("WS connect", started, 0, exc)
            return
        self._report("WS connect", started, 0, None)
        started = time.perf_counter()
        try:
            self.ws.send(json.dumps({"type": "subscribe", "ticker": self.code}))
            self.ws.send(json.dumps({"type": "subscribe", "topic": "signals"}))
            self._until("subscribed", {"ticker": self.code})
            self._until("subscribed", {"topic": "signals"})
        except Exception as exc:
            self._report("WS subscribe", started, 0, exc)
            self._close()
            return
        self._report("WS subscribe", started, 0, None)

    def on_stop(self) -> None:
        self._close()

    @task
    def ping(self) -> None:
        if self.ws is None:
            # The connection failed or was lost: try again, as the page does.
            self.on_start()
            return
        started = time.perf_counter()
        try:
            self.ws.send(json.dumps({"type": "ping"}))
            size = self._until("pong", {})
        except Exception as exc:
            self._report("WS ping round trip", started, 0, exc)
            self._close()
            return
        self._report("WS ping round trip", started, size, None)

    def _until(self, kind: str, fields: dict[str, str]) -> int:
        """Read until a message of type ``kind`` with ``fields``; answers the gateway's
        heartbeat pings on the way, as the page does. Returns the message's size."""
        assert self.ws is not None
        deadline = time.monotonic() + WS_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} message within {WS_TIMEOUT_S:.0f} s")
            text = self.ws.recv(timeout=left)
            message = json.loads(text)
            if message.get("type") == "ping":
                self.ws.send(json.dumps({"type": "pong", "ts": message.get("ts")}))
                continue
            if message.get("type") == "error":
                raise RuntimeError(f"the gateway answered an error: {message.get('message')}")
            if message.get("type") == kind and all(message.get(k) == v for k, v in fields.items()):
                return len(text)

    def _report(self, name: str, started: float, size: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=size,
            response=None,
            context={},
            exception=error,
        )

    def _close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # already gone
                log.debug("closing a dashboard socket failed", exc_info=True)


@events.quitting.add_listener
def _enforce_thresholds(environment: Environment, **_: Any) -> None:
    """The run's verdict against ``load/thresholds.py``; the exit code follows it."""
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges the whole run
    required = ["GET /health", "GET /api/quotes/[code]", "WS ping round trip"]
    if OPERATOR_TOKEN:
        required += ["POST /api/orders", "POST /api/kill-switch"]
    verdict = thresholds.check(environment.stats.entries.values(), THRESHOLDS, required)
    lines = ["Squall load thresholds:"]
    for key, requests, failures, p95, limit, ok in verdict.rows:
        mark = "ok  " if ok else "OVER"
        lines.append(
            f"  {mark} {key:<28} {requests:>6} requests {failures:>4} failed "
            f"p95 {p95:>6.0f} ms (limit {limit:.0f})"
        )
    lines += [f"  FAIL {problem}" for problem in verdict.problems]
    lines.append("  passed" if verdict.passed else "  FAILED")
    print("\n".join(lines), flush=True)
    environment.process_exit_code = 0 if verdict.passed else 1
