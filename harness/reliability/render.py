"""The reliability table in Markdown: one row per scenario run, then what the columns mean.

The same text goes to ``build/reliability/reliability.md`` and, between its markers, to
the README; only the build file has the machine-dependent wall-time column, so the
README's figures are the same on every machine for the same runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from harness.reliability.rows import MEASURES, REACTION_S, Recovery, Row

LEGEND = f"""\
- **load held**: the scenario's workloads (`concurrent`: started at the same instant), the
  trading desk's orders, and the simulated time it ran.
- **faults injected**: each fault window, with how many requests, frames or connections
  it struck (×N) or how long it lasted; the actions (such as every token expiring); the
  market's moves.
- **recovery**, in simulated seconds from a fault's end (an action's moment; a feed
  fault's each strike); the worst, and the median where there are several:
  *served*: until a call started after it was answered successfully;
  *healthy*: until the system's health read `healthy` again after every spell of ill
  health that began between the fault's start and {REACTION_S:g} s after its end (0:
  none, or over before the fault ended);
  *prices*: until the feed sent a trade on the system's next connection;
  *settled*: an order of unknown outcome, until the system settled it by asking the broker.
  Definitions: `harness/reliability/rows.py`.
- **lost**: orders the system holds as placed that the broker does not have, writes the
  storage accepted that are not in the database, and calls never answered by the end of
  the run. **duplicated**: orders at the broker beyond one per order the system placed.
  **unknown**: orders whose outcome was still unknown at the end. Each must be 0. —:
  nothing of the kind to count (without orders, nothing is placed twice or left unknown;
  the feed storm makes no calls, orders or writes: what it could lose is prices, which its
  `ticks-match-market` invariant checks step by step against the market). **counted
  over**: what was counted.
"""


def render_table(rows: Sequence[Row], *, wall: bool = False) -> str:
    """The table and its legend; ``wall`` adds the machine-dependent wall seconds."""
    header = [
        "scenario",
        "load held",
        "faults injected",
        "recovery",
        "lost",
        "duplicated",
        "unknown",
        "counted over",
        "checks",
    ]
    if wall:
        header.append("wall s (this machine)")
    lines = [_line(header), _line(["---"] * len(header))]
    for row in rows:
        cells = [
            f"[{row.scenario}]({row.path})",
            ", ".join(row.load),
            "; ".join(row.faults) or "—",
            recovery_cell(row.recoveries),
            _count(row.count("lost")),
            _count(row.count("duplicated")),
            _count(row.count("unknown")),
            " · ".join(f"{t.total:,} {t.what}" for t in row.tallies) or "—",
            _checks(row),
        ]
        if wall:
            cells.append(f"{row.wall_seconds:.1f}")
        lines.append(_line(cells))
    return "\n".join(lines) + "\n\n" + LEGEND


def recovery_cell(recoveries: Sequence[Recovery]) -> str:
    """Per measure, the worst (and which fault, when several faults were measured), with
    the median over several measurements; ``not by the end`` for any that never came."""
    parts = []
    for measure in MEASURES:
        taken = [r for r in recoveries if r.measure == measure]
        if not taken:
            continue
        word = measure
        missing = sum(1 for r in taken if r.seconds is None)
        if missing:
            parts.append(f"{word}: {missing} of {len(taken)} not by the end")
            continue
        seconds = [r.seconds for r in taken if r.seconds is not None]
        worst = max(taken, key=lambda r: r.seconds or 0.0)
        if len(taken) == 1:
            parts.append(f"{word} {seconds[0]:.1f} s")
            continue
        which = f", {worst.fault}" if len({r.fault for r in taken}) > 1 and worst.fault else ""
        parts.append(
            f"{word} ≤ {max(seconds):.1f} s (median {statistics.median(seconds):.1f} s "
            f"of {len(taken):,}{which})"
        )
    return "; ".join(parts) or "—"


def _count(value: int | None) -> str:
    if value is None:
        return "—"
    return f"**{value:,}**" if value else "0"


def _checks(row: Row) -> str:
    if row.verdict == "ERROR":
        return "ERROR: the run broke"
    mark = "✓" if row.verdict == "PASS" else "✗"
    return f"{mark} {row.checks_passed} of {row.checks} passed"


def _line(cells: Sequence[str]) -> str:
    # A cell is user text (scenario names, step labels): a pipe would end it early.
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
