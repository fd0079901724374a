"""Invariants over the whole history, Jepsen-style: the broker's records against the system's.

The workloads give every order a quantity no other order in the run has, so each order the
broker booked maps back to exactly one client order id. That makes the history checkable
without trusting the system's own account of what it sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from harness.result import Check
from harness.workload import PlacedOrder
from mocks.journal import Entry
from system.service import OrderRecord

# The wire path as KIS documents it, written out rather than taken from the system's client:
# a checker that shared the client's constant would agree with the client's mistakes.
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"


def booked_orders(journal: Sequence[Entry]) -> list[Entry]:
    """Order requests the broker accepted (whether or not the client heard the answer)."""
    return [e for e in journal if e.path == ORDER_PATH and e.method == "POST" and e.ok]


def _signature(body: dict[str, Any] | None) -> tuple[str, int] | None:
    if not body:
        return None
    try:
        return str(body["PDNO"]), int(body["ORD_QTY"])
    except (KeyError, ValueError, TypeError):
        return None


def bookings_by_order(
    placed: Sequence[PlacedOrder], journal: Sequence[Entry]
) -> tuple[dict[str, list[Entry]], list[Entry]]:
    """Each client order id's bookings at the broker, and bookings no order asked for."""
    by_signature = {(order.code, order.quantity): order.client_order_id for order in placed}
    bookings: dict[str, list[Entry]] = defaultdict(list)
    strays: list[Entry] = []
    for entry in booked_orders(journal):
        cid = by_signature.get(_signature(entry.body) or ("", -1))
        if cid is None:
            strays.append(entry)
        else:
            bookings[cid].append(entry)
    return bookings, strays


def orders_not_duplicated(placed: Sequence[PlacedOrder], journal: Sequence[Entry]) -> Check:
    bookings, strays = bookings_by_order(placed, journal)
    doubled = {cid: entries for cid, entries in bookings.items() if len(entries) > 1}
    description = "no order is booked twice for one client order id"
    if not placed:
        return Check(description, True, "no orders were placed", "invariant")
    problems = [
        f"{cid} booked {len(entries)} times (t={', '.join(f'{e.at:.1f}' for e in entries)})"
        for cid, entries in sorted(doubled.items())
    ]
    if strays:
        problems.append(f"{len(strays)} booked order(s) match no order the workloads asked for")
    bookings_seen = sum(len(v) for v in bookings.values())
    return _verdict(
        description, problems, f"{bookings_seen} bookings for {len(placed)} orders, none twice"
    )


def unknown_orders_reconciled(
    placed: Sequence[PlacedOrder],
    journal: Sequence[Entry],
    records: Sequence[OrderRecord],
    origin: float,
) -> Check:
    """Every order the system once had no verdict for is settled, and settled truthfully.

    ``records`` are the system's ``OrderRecord`` snapshots; their event times are loop
    times, ``origin`` is the loop time of the scenario's start.
    """
    description = "every order of unknown outcome is reconciled, in agreement with the broker"
    bookings, _ = bookings_by_order(placed, journal)
    ambiguous = [r for r in records if any("unknown" in what for _, what in r.events)]
    if not ambiguous:
        return Check(description, True, "no order had an unknown outcome", "invariant")
    problems: list[str] = []
    for record in ambiguous:
        cid = record.client_order_id
        booked = bookings.get(cid, [])
        if record.status == "unknown":
            problems.append(f"{cid} is still of unknown outcome at the end")
            continue
        last_unknown = max(i for i, (_, what) in enumerate(record.events) if "unknown" in what)
        settled = [
            what for _, what in record.events[last_unknown:] if what.startswith("reconciled")
        ]
        if not settled:
            problems.append(
                f"{cid} was never reconciled after its outcome became unknown "
                f"(the system went on with: {record.events[-1][1]})"
            )
            continue
        for at, what in record.events:
            when = at - origin
            # Strictly before: a re-send after an "absent" verdict is booked at the same
            # instant on virtual time, and is exactly what should follow the verdict.
            if what.startswith("reconciled: absent") and any(e.at < when for e in booked):
                problems.append(
                    f"{cid} was reconciled as absent at t={when:.1f}, but the broker had "
                    f"booked it at t={booked[0].at:.1f}"
                )
            if what.startswith("reconciled: present") and not booked:
                problems.append(f"{cid} was reconciled as present, but the broker never booked it")
    return _verdict(
        description, problems, f"{len(ambiguous)} order(s) of unknown outcome, all reconciled"
    )


def _verdict(description: str, problems: list[str], fine: str) -> Check:
    """Failed with the first few problems (enough to act on), or passed with ``fine``."""
    if problems:
        return Check(description, False, "; ".join(problems[:5]), "invariant")
    return Check(description, True, fine, "invariant")
