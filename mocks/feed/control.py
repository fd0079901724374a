"""The feed's control plane: the shared one (``mocks.control``) with feed rules and journal.

``POST /_squall/faults`` takes ``FeedFaultRule`` JSON; ``GET /_squall/journal`` answers
``FeedEntry`` rows, filtered by ``kind``, ``connection``, ``tr_id``, ``tr_key``, ``code``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from mocks.clock import MockClock
from mocks.control import BaseControlPlane
from mocks.faults import FeedFaultRule
from mocks.journal import FeedJournal


class FeedControlPlane(BaseControlPlane[FeedJournal]):
    rule_model = FeedFaultRule

    def __init__(
        self,
        *,
        seed: int = 0,
        control_token: str | None = None,
        clock: MockClock | None = None,
    ) -> None:
        super().__init__(
            name="feed", journal=FeedJournal(), seed=seed, control_token=control_token, clock=clock
        )

    def add_journal_route(self, router: APIRouter) -> None:
        plane = self

        @router.get("/journal")
        async def feed_journal(
            since: Annotated[int, Query(ge=0)] = 0,
            kind: str | None = None,
            connection: Annotated[int | None, Query(ge=1)] = None,
            tr_id: str | None = None,
            tr_key: str | None = None,
            code: str | None = None,
            limit: Annotated[int | None, Query(ge=1)] = None,
        ) -> dict[str, Any]:
            return plane.journal_page(
                plane.journal.entries(
                    since=since,
                    kind=kind,
                    connection=connection,
                    tr_id=tr_id,
                    tr_key=tr_key,
                    code=code,
                    limit=limit,
                )
            )
