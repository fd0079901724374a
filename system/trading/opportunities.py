"""Which arbitrage opportunities are open now, so the desk records each one once.

A rate detector (``TriangularArbitrageDetector``) re-prices every cycle through a pair each
time that pair is quoted, and reports a profitable cycle again on every quote for as long
as the edge lasts, under a new id each time (see its docstring: acting once is the
consumer's job). ``OpenOpportunities`` is that consumer's memory: a cycle *opens* the first
time it is reported and *closes* when a quote of one of its legs' pairs is priced and the
cycle is no longer reported (the edge is gone, or a leg went stale). Only an opening is
news; the desk records and broadcasts those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from system.storage.records import Opportunity as StoredOpportunity
from system.trading.detectors import Opportunity


class OpenOpportunities:
    """The cycles each detector reports as profitable now, keyed by (detector, cycle)."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Opportunity] = {}

    def update(self, detector: str, pair: str, found: Sequence[Opportunity]) -> list[Opportunity]:
        """``detector`` priced a quote of ``pair`` and reported ``found``; the ones that
        just opened, in the detector's order. A cycle open before, through ``pair`` and
        not in ``found`` closes."""
        reported = {opportunity.cycle for opportunity in found}
        for key, held in list(self._open.items()):
            through = any(leg.pair == pair for leg in held.legs)
            if key[0] == detector and through and key[1] not in reported:
                del self._open[key]
        opened = []
        for opportunity in found:
            key = (detector, opportunity.cycle)
            if key not in self._open:
                opened.append(opportunity)
            self._open[key] = opportunity
        return opened

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Opportunity]:
        return iter(list(self._open.values()))


def as_record(opportunity: Opportunity) -> StoredOpportunity:
    """``opportunity`` as the storage keeps it (``opportunities`` table)."""
    detail: dict[str, Any] = {
        "updated_pair": opportunity.updated_pair,
        "gross_rate": opportunity.gross_rate,
        "allocated_capital": opportunity.allocated_capital,
        "legs": [dataclasses.asdict(leg) for leg in opportunity.legs],
    }
    return StoredOpportunity(
        opportunity_id=opportunity.opportunity_id,
        detector=opportunity.detector,
        cycle=opportunity.cycle,
        net_rate=opportunity.net_rate,
        est_profit=opportunity.est_profit,
        detail=detail,
        at=opportunity.at,
    )
