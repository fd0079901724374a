"""The feed's world: its market and records, its sessions and the app keys they hold.

One ``Feed`` per feed app. Sessions (``mocks.feed.session``) ask it who an approval key
belongs to, whether their app key is free, what the fault plan decides for an event, and
to take the whole server down for a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from starlette.types import Scope

from mocks.clock import MockClock
from mocks.faults import Decision, FeedEvent
from mocks.faults.feed import FeedEventKind
from mocks.feed.config import FeedConfig
from mocks.feed.control import FeedControlPlane
from mocks.feed.protocol import UUID_SHAPE
from mocks.feed.records import Tape
from mocks.journal import FeedJournal
from mocks.market import Market
from mocks.market_events import MarketEvents
from mocks.server import listener_of

if TYPE_CHECKING:
    from mocks.feed.session import Session


logger = logging.getLogger(__name__)


class ApprovalRegistry(Protocol):
    """Who an approval key was issued to; the mock broker's ``tokens.approvals`` is one."""

    def appkey_of(self, approval_key: str) -> str | None: ...


class Feed:
    def __init__(
        self,
        config: FeedConfig,
        clock: MockClock,
        plane: FeedControlPlane,
        approvals: ApprovalRegistry | None = None,
        market_events: MarketEvents | None = None,
        market: Market | None = None,
    ) -> None:
        if market is not None and market.seed != config.seed:
            raise ValueError(
                f"the feed's seed is {config.seed} but the market given is seed "
                f"{market.seed}: give the feed the market's seed, or no market"
            )
        policy = config.approval_keys or ("issued" if approvals is not None else "uuid")
        if policy == "issued" and approvals is None:
            raise ValueError(
                "FeedConfig(approval_keys='issued') needs the broker's registry: pass "
                "approvals=<broker app>.state.broker.tokens.approvals, or use "
                "approval_keys='uuid' to accept any UUID-shaped key"
            )
        self.config = config
        self.clock = clock
        self.plane = plane
        self.approvals = approvals if policy == "issued" else None
        # The broker's market (or at least its events) when both run in one world: its
        # control plane injects the events, and one market computes each path once.
        self.market = market if market is not None else Market(config.seed, events=market_events)
        self.tape = Tape(self.market, clock)
        self._sessions: dict[int, Session] = {}
        self._numbers = itertools.count(1)
        self._holders: dict[str, Session] = {}  # app key -> the session using it
        self._held_until: dict[str, float] = {}  # app key -> when a dropped session frees it
        self._outage: asyncio.Task[None] | None = None

    @property
    def journal(self) -> FeedJournal:
        return self.plane.journal

    def step(self) -> int:
        """The market step the feed's clock is at now."""
        return self.market.step_at(self.clock.now())

    def appkey_for(self, approval_key: str) -> str | None:
        """The app key behind ``approval_key``, or None if it opens nothing here.

        With the broker's registry only issued keys count; without one, any UUID-shaped key
        is accepted and stands for an app of its own.
        """
        if self.approvals is not None:
            return self.approvals.appkey_of(approval_key)
        return approval_key if UUID_SHAPE.fullmatch(approval_key) else None

    def open(self, session: Session) -> int:
        number = self.next_connection()
        self._sessions[number] = session
        return number

    def next_connection(self) -> int:
        """A connection number, unique on this server (the FX venue's ticker connections
        take theirs here too, so the journal never shows two connections as one)."""
        return next(self._numbers)

    def close(self, session: Session) -> None:
        if self._sessions.get(session.number) is not session:
            return  # already forgotten by a reset
        del self._sessions[session.number]
        appkey = session.appkey
        if appkey is not None and self._holders.get(appkey) is session:
            del self._holders[appkey]
            self._held_until[appkey] = self.clock.now() + self.config.appkey_release_s

    def claim(self, appkey: str, session: Session) -> bool:
        """Bind ``appkey`` to ``session``: False while another session holds it (or a
        dropped one still does, for ``appkey_release_s``): KIS's OPSP8996."""
        holder = self._holders.get(appkey)
        if holder is not None and holder is not session:
            return False
        if self.clock.now() < self._held_until.get(appkey, 0.0):
            return False
        self._holders[appkey] = session
        return True

    def sessions(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def decide(
        self,
        kind: FeedEventKind,
        connection: int,
        tr_id: str | None = None,
        tr_key: str | None = None,
    ) -> Decision | None:
        event = FeedEvent(kind, connection, tr_id, tr_key)
        return self.plane.faults.decide(event, self.clock.now())

    def restart(self, scope: Scope, seconds: float) -> None:
        """Take the server down for ``seconds`` (see ``Restart``); one outage at a time."""
        if self._outage is not None and not self._outage.done():
            return
        outage = listener_of(scope).outage(seconds)  # raises before anything is cut
        for session in self.sessions():
            session.cut()
        self._outage = asyncio.get_running_loop().create_task(outage)
        self._outage.add_done_callback(_report_outage)

    def reset(self) -> None:
        """Back to start: every connection dropped, no app key held, numbering from 1."""
        for session in self.sessions():
            session.drop_silently()
        self._sessions.clear()
        self._holders.clear()
        self._held_until.clear()
        self._numbers = itertools.count(1)

    async def shutdown(self) -> None:
        if self._outage is not None:
            self._outage.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outage


def _report_outage(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the feed could not come back after a restart", exc_info=task.exception())
