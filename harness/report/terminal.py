"""The terminal: live progress while scenarios run, and a summary table when they are done.

Scenario text is user input, so it reaches rich as ``Text``, never as markup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from rich import progress as rich_progress
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.report.common import Verdict, compression, tally, verdict
from harness.result import ScenarioResult

VERDICT_STYLES: dict[Verdict, str] = {
    "PASS": "bold green",
    "FAIL": "bold red",
    "ERROR": "bold magenta",
}


def summary_table(results: list[ScenarioResult]) -> Table:
    table = Table(title="Scenarios", show_lines=False)
    table.add_column("scenario", ratio=1, overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("simulated s", justify="right", no_wrap=True)
    table.add_column("wall s", justify="right", no_wrap=True)
    table.add_column("compression", justify="right", no_wrap=True)
    for result in results:
        outcome = verdict(result)
        table.add_row(
            Text(result.name),
            Text(outcome, style=VERDICT_STYLES[outcome]),
            f"{result.simulated_seconds:.1f}",
            f"{result.wall_seconds:.2f}",
            compression(result),
        )
        if result.error is not None:
            lines = result.error.strip().splitlines()
            table.add_row(Text(f"  error: {lines[0] if lines else 'the run broke'}", "magenta"))
        if outcome != "PASS":
            for check in result.failed_checks:
                detail = Text(f"  ✗ {check.description}", style="red")
                detail.append(f"\n    observed: {check.observed}", style="default")
                if check.where:
                    detail.append(f"\n    at {check.where}", style="dim")
                table.add_row(detail)
    return table


def print_summary(results: list[ScenarioResult], console: Console) -> None:
    console.print(summary_table(results))
    failed = any(verdict(result) != "PASS" for result in results)
    console.print(Text(tally(results), style="bold red" if failed else "bold green"))


@dataclass
class ProgressHandle:
    """One running scenario, as ``Progress.start`` returned it."""

    name: str
    duration: float
    started: float
    task: rich_progress.TaskID | None


class Progress:
    """A bar per scenario, filled in simulated seconds of its duration.

    On a terminal it is a live rich display. Elsewhere (CI logs, a pipe) a redrawn bar would
    be noise, so it prints one line when a scenario starts and one when it finishes.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        # is_interactive is is_terminal minus TERM=dumb, where redrawing does not work either.
        self.live = self.console.is_interactive
        self._bars: rich_progress.Progress | None = None
        if self.live:
            self._bars = rich_progress.Progress(
                rich_progress.TextColumn("{task.description}"),
                rich_progress.BarColumn(),
                rich_progress.TextColumn("{task.completed:>6.1f}/{task.total:.0f} s simulated"),
                rich_progress.TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )

    def __enter__(self) -> Progress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()

    def start(self, name: str, duration: float) -> ProgressHandle:
        task = None
        if self._bars is not None:
            task = self._bars.add_task(_description(name), total=max(duration, 0.0))
        else:
            self.console.print(Text(f"▶ {name} ({duration:.0f} s simulated)"), soft_wrap=True)
        return ProgressHandle(name, duration, time.monotonic(), task)

    def advance(self, handle: ProgressHandle, simulated_now: float) -> None:
        if self._bars is not None and handle.task is not None:
            done = min(max(simulated_now, 0.0), handle.duration)
            self._bars.update(handle.task, completed=done)

    def finish(self, handle: ProgressHandle, passed: bool) -> None:
        outcome: Verdict = "PASS" if passed else "FAIL"
        if self._bars is not None and handle.task is not None:
            style = VERDICT_STYLES[outcome]
            description = f"{_description(handle.name)} [{style}]{outcome}[/{style}]"
            self._bars.update(handle.task, description=description)
            self._bars.stop_task(handle.task)
            return
        wall = time.monotonic() - handle.started
        line = Text(f"{'✓' if passed else '✗'} {handle.name} ")
        line.append(outcome, style=VERDICT_STYLES[outcome])
        line.append(f" in {wall:.2f} s wall")
        self.console.print(line, soft_wrap=True)


def _description(name: str) -> str:
    # Task descriptions are rendered as markup; a name like "[red]" must stay literal.
    return f"[bold]{escape(name)}[/bold]"
