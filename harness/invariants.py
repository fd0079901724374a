"""Invariants over the whole history, Jepsen-style: the mocks' records against the system's.

The workloads give every order a quantity no other order in the run has, so each order the
broker booked maps back to exactly one client order id. That makes the history checkable
without trusting the system's own account of what it sent.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.leaks import Secrets
from harness.result import Check, Launched
from harness.workload import PlacedOrder
from mocks.feed.kiwoom_protocol import TRADES as KIWOOM_TRADES
from mocks.feed.protocol import TRADES as KIS_TRADES
from mocks.journal import Entry, FeedEntry
from mocks.market import STEP_SECONDS
from system.market import PriceUpdate
from system.service import OrderRecord

# The order's stock and quantity as each broker documents its order body (KIS's PDNO and
# ORD_QTY, Kiwoom's stk_cd and ord_qty), written out rather than taken from the system's
# client: a checker that shared the client's constants would agree with its mistakes. Which
# requests are orders the mock broker says itself (its journal's ``kind``).
_ORDER_FIELDS = (("PDNO", "ORD_QTY"), ("stk_cd", "ord_qty"))


def booked_orders(journal: Sequence[Entry]) -> list[Entry]:
    """Order requests the broker accepted (whether or not the client heard the answer)."""
    return [e for e in journal if e.kind == "order" and e.ok]


def _signature(body: dict[str, Any] | None) -> tuple[str, int] | None:
    if not body:
        return None
    for code, quantity in _ORDER_FIELDS:
        if code in body:
            try:
                return str(body[code]), int(body[quantity])
            except (KeyError, ValueError, TypeError):
                return None
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
    # The workloads' orders: the trading desk's have their own history checks, which match
    # them to the broker's books by order number.
    asked = {order.client_order_id for order in placed}
    ambiguous = [
        r
        for r in records
        if r.client_order_id in asked and any("unknown" in what for _, what in r.events)
    ]
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


SECRETS_NOT_PRINTED = "secrets not printed: no password, appsecret or token in the output"


SECRETS_NOT_LEAKED = (
    "secrets not printed: no appsecret, access token, approval key, operator token or "
    "database password in the logs, the journals or the results"
)


def secrets_not_leaked(secrets: Secrets, places: Mapping[str, str]) -> Check:
    """None of a run's secrets in what it leaves for people to read (``places``: a name and
    its text each, e.g. "the log" and every line logged during the run)."""
    searched = ", ".join(places)
    return _verdict(
        SECRETS_NOT_LEAKED,
        secrets.leaks(places),
        f"none of the run's secrets ({secrets.kinds() or 'none'}) in {searched}",
    )


def secrets_not_printed(launched: Launched) -> Check:
    """Nothing the started command was given as a secret shows in what it printed."""
    leaked = [f"the output holds {what} ({n} time(s))" for what, n in launched.leaked().items()]
    given = ", ".join(launched.secrets) or "none"
    return _verdict(SECRETS_NOT_PRINTED, leaked, f"none of the secrets it was given ({given})")


def _verdict(description: str, problems: list[str], fine: str) -> Check:
    """Failed with the first few problems (enough to act on), or passed with ``fine``."""
    if problems:
        return Check(description, False, "; ".join(problems[:5]), "invariant")
    return Check(description, True, fine, "invariant")


# --- the realtime feed ----------------------------------------------------------------------

TICKS_MATCH_MARKET = "ticks match the market: none wrong, none twice, none missed after resync"
# The trade frames of each realtime protocol the mock feed speaks: KIS's and Kiwoom's.
TRADE_TYPES = (KIS_TRADES, KIWOOM_TRADES)
# Frames whose records reached the wire intact (a delayed or reordered frame still arrives).
_DELIVERED = ("sent", "duplicate", "reordered", "delayed")


def ticks_match_market(
    feed_journal: Sequence[FeedEntry],
    taken: Sequence[PriceUpdate],
    market: Callable[[str, int], tuple[int, int]],
    *,
    until: float,
) -> Check:
    """Every trade the system took from the feed is one the market made, once and in order,
    and every step of the market it did not get from the feed (a gap, a drop, a connection
    down) was made good by a REST resync afterwards.

    ``taken`` is what the system's feed client published, ``at`` in scenario seconds;
    ``market(code, step)`` is the simulator's (price, accumulated volume) at ``step`` (one
    per ``STEP_SECONDS``). The steps checked for a code run from the first the feed sent to
    the last it sent before ``until`` (later ones may still be in flight when the run ends).
    """
    description = TICKS_MATCH_MARKET
    sent: dict[str, set[int]] = defaultdict(set)
    for entry in feed_journal:
        if (
            entry.kind == "frame"
            and (entry.tr_id or "").upper() in TRADE_TYPES
            and entry.outcome in _DELIVERED
            and entry.tr_key is not None
            and entry.step is not None
            and entry.at < until
        ):
            sent[entry.tr_key].update(range(entry.step, entry.step + (entry.records or 1)))
    if not sent:
        return _verdict(description, ["the feed sent the system no trades to check"], "")
    problems: list[str] = []
    steps_checked = 0
    for code in sorted(sent):
        first, last = min(sent[code]), max(sent[code])
        steps_checked += last - first + 1
        by_volume: dict[tuple[int, int], int] = {}
        for step in range(0, last + 2):
            by_volume.setdefault(market(code, step), step)
        published: list[tuple[float, int]] = []
        for item in taken:
            if item.code != code or item.source != "feed":
                continue
            step_of = by_volume.get((item.price, item.volume))
            if step_of is None:
                problems.append(
                    f"{code} at t={item.at:.1f}: price {item.price} with volume {item.volume} "
                    "was never a trade of the market"
                )
                continue
            published.append((item.at, step_of))
        seen: set[int] = set()
        previous = -1
        for at, step in published:
            if step in seen:
                problems.append(f"{code} step {step} taken twice (again at t={at:.1f})")
            elif step < previous:
                problems.append(f"{code} step {step} taken after step {previous} (t={at:.1f})")
            seen.add(step)
            previous = max(previous, step)
        resyncs = sorted(i.at for i in taken if i.code == code and i.source == "rest")
        missed = [
            step
            for step in range(first, last + 1)
            if step not in seen and bisect.bisect_left(resyncs, step * STEP_SECONDS) == len(resyncs)
        ]
        if missed:
            problems.append(
                f"{code}: {len(missed)} step(s) missed and never resynced, "
                f"first at step {missed[0]} ({_ranges(missed)})"
            )
    fine = f"{steps_checked} market steps over {len(sent)} code(s), all taken or resynced"
    return _verdict(description, problems, fine)


def _ranges(steps: Sequence[int]) -> str:
    """``3-5, 9`` for [3, 4, 5, 9], at most a few ranges."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][-1] + 1:
            runs[-1].append(step)
        else:
            runs.append([step])
    shown = [f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs[:4]]
    return "steps " + ", ".join(shown) + (", ..." if len(runs) > 4 else "")
