"""Signals across gateways: Redis pub/sub (the seed's ``RedisSubscriber``).

Several gateway processes can serve one deployment behind a load balancer, while one of them
runs the trading desk that finds signals. A browser connected to any gateway must see them.
So each gateway publishes the signals it finds to one Redis channel, subscribes to it, and
hands the others' signals to its own ``SignalBroadcaster`` (``deliver``), which sends them to
its clients and keeps them for replay like its own.

What is shared, and why only that: signals (the ``signals`` topic). Prices are not: every
gateway subscribes its own feed for the tickers its clients want and falls back to REST on
its own, so a price shared as well would reach each client twice.

Local first: a gateway sends its own signals to its own clients at once, whatever Redis
does, and ignores its own messages when they come back from the channel (each message
names its origin). While Redis is unreachable a gateway is **local-only**: its signals
reach its own clients and are counted as not shared, and ``/health`` says so (degraded,
never unhealthy: the gateway still serves). It reconnects by itself with jittered backoff
and is **shared** again once subscribed; nothing missed meanwhile is replayed, since a late
signal is worth less than none.

The envelope (``seal``/``open_envelope``) is protocol logic without I/O, tested without
Redis. A message on the channel that is not a signal envelope — another program's, a bad
deploy's — is counted, logged and dropped; the subscription goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from system.broker.backoff import jittered_backoff
from system.broker.clock import loop_time
from system.health import Health
from system.lifecycle import Lifecycle

log = logging.getLogger(__name__)

FanoutState = Literal["connecting", "shared", "local-only"]

DEFAULT_CHANNEL = "squall:signals"
# The most a malformed message's text shown in a log line: enough to recognise it.
_SNIPPET_CHARS = 80


class EnvelopeError(ValueError):
    """A message on the channel is not a signal envelope; the text says what is wrong."""


@dataclass(frozen=True)
class Envelope:
    origin: str  # the gateway that published it
    message: dict[str, Any]  # a gateway ``signal`` message: {"type": "signal", "kind", "data"}


def seal(origin: str, message: Mapping[str, Any]) -> str:
    """The text published for ``message``."""
    return json.dumps({"origin": origin, "message": message}, separators=(",", ":"))


def open_envelope(raw: bytes | str) -> Envelope:
    """The envelope in ``raw``; ``EnvelopeError`` says what is wrong with it."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not UTF-8 JSON ({exc})") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"a JSON {type(value).__name__}, not an object")
    origin, message = value.get("origin"), value.get("message")
    if not isinstance(origin, str) or not origin:
        raise EnvelopeError('no "origin" (the publishing gateway) string')
    if not isinstance(message, dict) or message.get("type") != "signal":
        raise EnvelopeError('no "message" object of type "signal"')
    if not isinstance(message.get("kind"), str) or "data" not in message:
        raise EnvelopeError('the signal has no "kind" string or no "data"')
    return Envelope(origin, message)


def redis_server(url: str) -> str:
    """``host:port/db`` of a Redis URL, for messages: never its password."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        return "Redis (an unparsable URL)"
    db = parts.path.strip("/") or "0"
    return f"{host}:{port}/{db}"


@dataclass
class FanoutCounters:
    shared: int = 0  # own signals published to the channel
    received: int = 0  # other gateways' signals delivered to this gateway's clients
    not_shared: int = 0  # own signals that stayed local: Redis was unreachable
    malformed: int = 0  # channel messages that were not signal envelopes
    outages: int = 0  # times the gateway went local-only


class RedisFanout(Lifecycle):
    """One gateway's side of the shared signal channel (see the module docstring).

    ``share(message)`` is called with each signal this gateway publishes; ``deliver`` is
    called with each signal another gateway published. ``start()`` begins connecting;
    ``aclose()`` stops."""

    def __init__(
        self,
        url: str,
        deliver: Callable[[dict[str, Any]], object],
        *,
        channel: str = DEFAULT_CHANNEL,
        origin: str | None = None,
        queue_size: int = 1000,
        connect_timeout_s: float = 2.0,
        ping_interval_s: float = 5.0,
        reconnect_base_s: float = 0.5,
        reconnect_max_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.server = redis_server(url)
        self.channel = channel
        self.origin = origin or f"gateway-{secrets.token_hex(4)}"
        self.deliver = deliver
        self.connect_timeout_s = connect_timeout_s
        self.ping_interval_s = ping_interval_s
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.counters = FanoutCounters()
        self.state: FanoutState = "connecting"
        self.since = 0.0
        self.reason = "not connected yet"
        self._rng = rng or random.Random()
        self._outbound: deque[str] = deque(maxlen=queue_size)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- the gateway's side ----------------------------------------------------------------

    def share(self, message: Mapping[str, Any]) -> None:
        """Publish one of this gateway's signals to the others (never blocks)."""
        if self.state != "shared":
            self.counters.not_shared += 1
            return
        if len(self._outbound) == self._outbound.maxlen:
            self.counters.not_shared += 1  # the oldest waiting one is pushed out
        self._outbound.append(seal(self.origin, message))
        self._wake.set()

    def health(self) -> Health:
        if self.state == "shared":
            return Health("healthy")
        down_for = self._down_for()
        if self.state == "connecting":
            what = f"connecting to Redis at {self.server} for {down_for:.1f} s"
        else:
            what = f"Redis at {self.server} unreachable for {down_for:.1f} s ({self.reason})"
        return Health(
            "degraded",
            (
                f"{what}: signals reach this gateway's clients only, and other gateways' "
                "signals don't reach them; reconnecting by itself",
            ),
        )

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self.since = loop_time()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway fan-out")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _run(self) -> None:
        attempt = 0  # failed connections in a row
        while True:
            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=self.connect_timeout_s,
                # Bounds a publish to a server that stopped answering without closing.
                socket_timeout=2 * self.ping_interval_s,
                health_check_interval=max(1, round(self.ping_interval_s)),
                # Our own loop retries, with backoff and a health state; the client's
                # silent retries would only hide an outage for a while.
                retry=Retry(NoBackoff(), 0),
            )
            try:
                await self._session(client)
            except (RedisError, OSError) as exc:
                # After a working session the count starts again: a quick first retry.
                attempt = 1 if self.state == "shared" else attempt + 1
                self._down(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(
                jittered_backoff(
                    attempt, base_s=self.reconnect_base_s, max_s=self.reconnect_max_s, rng=self._rng
                )
            )

    async def _session(self, client: redis.Redis) -> None:
        """Subscribed: deliver what arrives and publish what waits, until either fails."""
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        async with pubsub:
            await pubsub.subscribe(self.channel)
            self._up()
            publisher = asyncio.get_running_loop().create_task(self._publish(client))
            try:
                while not publisher.done():
                    # A timeout, so the health-check PING goes out on a quiet channel and
                    # a silently dead server is noticed.
                    message = await pubsub.get_message(timeout=self.ping_interval_s)
                    if message is not None and message.get("type") == "message":
                        self._received(message["data"])
                publisher.result()  # raises what stopped it
            finally:
                publisher.cancel()
                await asyncio.gather(publisher, return_exceptions=True)

    async def _publish(self, client: redis.Redis) -> None:
        while True:
            while self._outbound:
                await client.publish(self.channel, self._outbound[0])
                self._outbound.popleft()  # only once published: a failure leaves it out
                self.counters.shared += 1
            self._wake.clear()
            await self._wake.wait()

    def _received(self, raw: bytes | str) -> None:
        try:
            envelope = open_envelope(raw)
        except EnvelopeError as exc:
            self.counters.malformed += 1
            shown = raw[:_SNIPPET_CHARS]
            log.warning(
                "gateway fan-out: dropped a message on Redis channel %s that is not a signal "
                "envelope (%s): %r; only Squall gateways should publish there",
                self.channel,
                exc,
                shown,
            )
            return
        if envelope.origin == self.origin:
            return  # our own, already sent to our clients
        self.counters.received += 1
        try:
            self.deliver(envelope.message)
        except Exception:
            # One signal the broadcaster could not take must not end the subscription.
            log.exception("gateway fan-out: delivering a signal from %s failed", envelope.origin)

    def _up(self) -> None:
        if self.state != "shared":
            # Recovering from an outage is news; the first connection is routine.
            level = logging.INFO if self.state == "connecting" else logging.WARNING
            log.log(
                level,
                "gateway fan-out: sharing signals through Redis at %s (channel %s)%s",
                self.server,
                self.channel,
                "" if self.state == "connecting" else f", after {self._down_for():.1f} s",
            )
        self.state, self.since, self.reason = "shared", loop_time(), "subscribed"

    def _down(self, exc: BaseException) -> None:
        reason = _describe(exc)
        if self.state != "local-only":
            if self.state == "shared":
                self.counters.outages += 1
            self.state, self.since = "local-only", loop_time()
            # What waits to be shared is dropped with the connection: a late signal is
            # worth less than none.
            self.counters.not_shared += len(self._outbound)
            self._outbound.clear()
            log.warning(
                "gateway fan-out: %s Redis at %s (%s); signals stay on this gateway until "
                "it is reachable",
                "lost" if self.counters.outages else "cannot reach",
                self.server,
                reason,
            )
        elif reason != self.reason:
            log.warning(
                "gateway fan-out: cannot reach Redis at %s (%s); retrying", self.server, reason
            )
        self.reason = reason

    def _down_for(self) -> float:
        return loop_time() - self.since


def _describe(exc: BaseException) -> str:
    # redis-py's texts name host and port, never the password; cut a novel short anyway.
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]
