"""The feed's public status, the seed's extras: ``GET /health`` and ``GET /stats``.

Public (no control token, any client) and read-only, because the seed's Docker health check
polled ``/health`` with nothing to present. So they answer plain counts: no app key, approval
key or token, not even a fingerprint; per-connection detail stays on the control plane
(``GET /_squall/feed/connections``).

Connections and subscriptions are read off the channels' own session lists when asked.
Messages are counted where they cross the ASGI boundary (``Traffic``), once for all four
channels, rather than in four sessions' send loops: what is counted is what was handed to
the server to write (a frame a gap fault dropped never is). A control-plane reset zeroes
the counts, as it restarts the clock that ``uptime_s`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.feed.fx_session import FxVenue
from mocks.feed.kiwoom_session import KiwoomSession
from mocks.feed.session import Session
from mocks.feed.signals import SignalVenue
from mocks.feed.state import Feed


class Traffic:
    """WebSocket messages sent and received per channel since start (or the last reset).
    ``channels`` names each channel's paths."""

    def __init__(self, channels: Mapping[str, Sequence[str]]) -> None:
        self.paths = {name: tuple(paths) for name, paths in channels.items()}
        self._channel_of = {path: name for name, paths in channels.items() for path in paths}
        self.sent = dict.fromkeys(self.paths, 0)
        self.received = dict.fromkeys(self.paths, 0)

    def reset(self) -> None:
        self.sent = dict.fromkeys(self.paths, 0)
        self.received = dict.fromkeys(self.paths, 0)

    def counting(self, app: ASGIApp) -> ASGIApp:
        """``app``, counting the messages of every WebSocket on a channel's path (as
        ``FastAPI.add_middleware(traffic.counting)``; HTTP passes straight through)."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            channel = self._channel_of.get(scope["path"]) if scope["type"] == "websocket" else None
            if channel is None:
                await app(scope, receive, send)
                return

            async def receiving() -> Message:
                message = await receive()
                if message["type"] == "websocket.receive":
                    self.received[channel] += 1
                return message

            async def sending(message: Message) -> None:
                await send(message)
                if message["type"] == "websocket.send":  # not counted if the send failed
                    self.sent[channel] += 1

            await app(scope, receiving, sending)

        return counted


@dataclass(frozen=True)
class _Channel:
    """One channel's open connections and their subscriptions, read when asked."""

    connections: Callable[[], int]
    subscriptions: Callable[[], int]


def status_router(feed: Feed, traffic: Traffic, fx: FxVenue, signals: SignalVenue) -> APIRouter:
    """``GET /health`` and ``GET /stats`` of the feed app (no control-plane dependency)."""

    def realtime(kiwoom: bool) -> list[Session]:
        # KIS and Kiwoom connections are both the feed's sessions (``Feed.open``).
        return [s for s in feed.sessions() if isinstance(s, KiwoomSession) == kiwoom]

    channels = {
        # A Kiwoom session mirrors its registrations into ``subscriptions`` (type, item).
        "kis": _Channel(
            lambda: len(realtime(False)),
            lambda: sum(len(s.subscriptions.active()) for s in realtime(False)),
        ),
        "kiwoom": _Channel(
            lambda: len(realtime(True)),
            lambda: sum(len(s.subscriptions.active()) for s in realtime(True)),
        ),
        "fx": _Channel(
            lambda: len(fx.sessions), lambda: sum(len(s.subscribed) for s in fx.sessions)
        ),
        "signals": _Channel(
            lambda: len(signals.sessions), lambda: sum(len(s.tickers) for s in signals.sessions)
        ),
    }
    api = APIRouter()

    # async, as every route of the mocks: a plain def would run in a worker thread, off the
    # loop whose (possibly virtual) clock ``uptime_s`` reads.
    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/stats")
    async def stats() -> dict[str, Any]:
        per_channel: dict[str, dict[str, Any]] = {
            name: {
                "paths": list(traffic.paths.get(name, ())),
                "connections": channel.connections(),
                "subscriptions": channel.subscriptions(),
                "messages_sent": traffic.sent.get(name, 0),
                "messages_received": traffic.received.get(name, 0),
            }
            for name, channel in channels.items()
        }
        totals = {
            field: sum(counts[field] for counts in per_channel.values())
            for field in ("connections", "subscriptions", "messages_sent", "messages_received")
        }
        return {
            "status": "ok",
            "uptime_s": round(feed.clock.now(), 3),
            "step": feed.step(),
            **totals,
            "channels": per_channel,
        }

    return api
