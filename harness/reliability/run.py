"""Running the named reliability scenarios and writing their table.

``python -m harness.reliability [NAME ...] [--out DIR] [--readme [PATH]]`` (what
``nox -s reliability`` runs) runs each scenario in-process as ``squall run`` does, against
every broker it lists, and writes ``reliability.json`` and ``reliability.md`` to ``DIR``
(``build/reliability``). ``--readme`` also writes the table into the README's Reliability
section, between its markers; it needs the whole list, never a part.

Exit status: 0 when every run passed with nothing lost, duplicated or left unknown; 1
otherwise (the table is written to ``DIR`` all the same, to show why, but the README is
left as it was); 2 on bad input (an unknown name, a README without its markers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness.reliability.readme import ReadmeError, check_section, write_section
from harness.reliability.render import render_table
from harness.reliability.rows import Row, row
from harness.report import Progress, print_summary
from harness.result import ScenarioResult
from harness.runner import Options, run_name, run_scenario
from harness.scenario import ScenarioError, load_file

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Named:
    """A reliability scenario: its name on the command line, its file (from the checkout's
    root), and the size the report promises, in the issue's words."""

    name: str
    path: str
    size: str


# The shipped scenario wherever it has the named size; a copy at that size under
# scenarios/reliability/ where it has not (the shipped storm is 500 quotes).
NAMED: tuple[Named, ...] = (
    Named(
        "token-storm",
        "scenarios/reliability/egw00133-storm-1000.yaml",
        "EGW00133 storm at 1,000 concurrent quote requests",
    ),
    Named("database-outage", "scenarios/storage/database-outage.yaml", "30 s database outage"),
    Named(
        "pool-exhaustion",
        "scenarios/storage/pool-exhaustion.yaml",
        "pool exhaustion at 200 concurrent requests",
    ),
    Named("feed-disconnects", "scenarios/market/disconnect-storm.yaml", "100 feed disconnects"),
    Named(
        "lost-order-answers",
        "scenarios/trading/ambiguous-orders.yaml",
        "100 orders and more with 30 % of their answers lost",
    ),
    Named("trading-day", "scenarios/trading/full-trading-day.yaml", "the full trading day"),
)


class SelectionError(Exception):
    """Names that are not reliability scenarios, or options that do not go together."""


def select(names: Sequence[str]) -> list[Named]:
    """The named scenarios, in the report's order; all of them when ``names`` is empty."""
    known = {named.name: named for named in NAMED}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SelectionError(
            f"no reliability scenario named {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(known)}"
        )
    return [named for named in NAMED if not names or named.name in names]


def run_all(selected: Sequence[Named], console: Console) -> list[Row]:
    """Run every selected scenario against every broker it lists; print the verdicts."""
    runs = []
    for named in selected:
        file = ROOT / named.path
        if not file.is_file():
            raise SelectionError(f"{named.name}: {file} is not there; run from a Squall checkout")
        try:
            scenario = load_file(file)
        except ScenarioError as exc:
            raise SelectionError("\n".join(map(str, exc.problems))) from None
        runs += [(named, scenario, api) for api in scenario.brokers]
    rows: list[Row] = []
    results: list[ScenarioResult] = []
    with Progress(console) as progress:
        for named, scenario, api in runs:
            handle = progress.start(run_name(scenario, api), scenario.duration)
            result = run_scenario(
                scenario,
                named.path,
                Options(broker=api),
                lambda now, handle=handle: progress.advance(handle, now),  # type: ignore[misc]
            )
            progress.finish(handle, result.passed)
            results.append(result)
            rows.append(row(scenario, result))
    print_summary(results, console)
    return rows


def problems(rows: Sequence[Row]) -> list[str]:
    """Why the report fails, a line per run that failed or lost, doubled or left
    something unknown; empty when it passes."""
    found = []
    for each in rows:
        if each.verdict != "PASS":
            found.append(f"{each.scenario}: {each.verdict} ({each.error or 'a check failed'})")
        counts = {what: each.count(what) for what in ("lost", "duplicated", "unknown")}
        bad = ", ".join(f"{n:,} {what}" for what, n in counts.items() if n)
        if bad:
            found.append(f"{each.scenario}: {bad} (must be 0)")
    return found


def write_report(rows: Sequence[Row], out: Path) -> tuple[Path, Path]:
    """``reliability.json`` (every figure, wall seconds included) and ``reliability.md``."""
    out.mkdir(parents=True, exist_ok=True)
    document = {"passed": not problems(rows), "scenarios": [each.to_json() for each in rows]}
    json_path = out / "reliability.json"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    md_path = out / "reliability.md"
    md_path.write_text("# Reliability\n\n" + render_table(rows, wall=True), "utf-8")
    return json_path, md_path


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """Every log record (INFO and up) into ``path`` while the block runs: an outage makes
    the system log each retry, which would bury the progress in the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    root.handlers, root.level = [handler], logging.INFO
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level
        handler.close()


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.reliability",
        description="Run the named reliability scenarios and write one table of them.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"only these ({', '.join(named.name for named in NAMED)}); default: all",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build/reliability"),
        help="where reliability.json and reliability.md go (default: %(default)s)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        nargs="?",
        const=ROOT / "README.md",
        default=None,
        metavar="PATH",
        help="also write the table into this README's Reliability section "
        "(default with no PATH: the checkout's README.md)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    console = Console()
    err = Console(stderr=True)
    try:
        selected = select(args.names)
        if args.readme is not None and len(selected) != len(NAMED):
            raise SelectionError("--readme takes the whole list: drop the names to use it")
        if args.readme is not None:
            check_section(args.readme)
        with logging_to(args.out / "squall-run.log"):
            rows = run_all(selected, console)
    except (SelectionError, ReadmeError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    json_path, md_path = write_report(rows, args.out)
    console.print(f"wrote {json_path} and {md_path}")
    found = problems(rows)
    for line in found:
        err.print(f"[red]✗[/red] {escape(line)}")
    if args.readme is not None and found:
        # The README shows what the system holds: a failed run's table stays in build/.
        err.print(f"{args.readme} left as it was: the report failed")
    elif args.readme is not None:
        try:
            changed = write_section(args.readme, render_table(rows))
        except ReadmeError as exc:  # changed since the check before the runs
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            return 2
        console.print(f"{'updated' if changed else 'unchanged:'} {args.readme}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
