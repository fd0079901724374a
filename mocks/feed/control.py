"""The feed's control plane: the shared one (``mocks.control``) with feed rules and journal.

``POST /_squall/faults`` takes ``FeedFaultRule`` JSON; ``GET /_squall/journal`` answers
``FeedEntry`` rows, filtered by ``kind``, ``connection``, ``tr_id``, ``tr_key``, ``code``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from mocks.control import BaseControlPlane
from mocks.faults import FeedFaultRule
from mocks.journal import FeedEntry, FeedEntryKind, FeedJournal


class FeedControlPlane(BaseControlPlane[FeedJournal]):
    rule_model = FeedFaultRule
    default_name = "feed"

    def new_journal(self) -> FeedJournal:
        return FeedJournal()

    async def journal_query(
        self,
        since: Annotated[int, Query(ge=0)] = 0,
        kind: FeedEntryKind | None = None,  # a typo is a 422 naming the kinds, not []
        connection: Annotated[int | None, Query(ge=1)] = None,
        tr_id: str | None = None,
        tr_key: str | None = None,
        code: str | None = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[FeedEntry]:
        return self.journal.entries(
            since=since,
            kind=kind,
            connection=connection,
            tr_id=tr_id,
            tr_key=tr_key,
            code=code,
            limit=limit,
        )
