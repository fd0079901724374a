"""The timeline drawn as inline SVG: faults against what the broker and the system did.

Calls are binned, never drawn one by one, so a 600 s run with 20,000 broker calls stays a
few hundred kilobytes. Every string that reaches the SVG goes through ``html.escape``.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from harness.result import HealthState, Timeline, Window

WIDTH = 1000
PLOT_LEFT = 150
PLOT_RIGHT = WIDTH - 20
ROW = 18
BAR_LANE = 80
THIN_LANE = 26
AXIS = 34
# The plot is 830 px wide: past this many bins a bar would be under a pixel, so bins widen.
MAX_BINS = 800

OK_COLOUR = "#2ca02c"
UNFINISHED = "unfinished"
UNFINISHED_COLOUR = "#7f7f7f"
# No orange: that is the fault bands' colour, and an outcome must not look like a fault.
PALETTE = (
    "#d62728",
    "#9467bd",
    "#1f77b4",
    "#e377c2",
    "#8c564b",
    "#17becf",
    "#bcbd22",
    "#393b79",
)
HEALTH_COLOURS: dict[HealthState, str] = {
    "healthy": "#2ca02c",
    "degraded": "#f0a500",
    "unhealthy": "#d62728",
}
FAULT_FILL = "#ff7f0e"


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: str
    count: int


@dataclass(frozen=True)
class Drawing:
    """The SVG, and the legend the page prints beside it (HTML text wraps; SVG text does not)."""

    svg: str
    broker_legend: list[LegendEntry]
    system_legend: list[LegendEntry]
    bin_seconds: float


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def outcome_colours(outcomes: Iterable[str]) -> dict[str, str]:
    """``ok`` green, ``unfinished`` grey, every other outcome its own colour."""
    colours: dict[str, str] = {}
    others = 0
    for outcome in outcomes:
        if outcome == "ok":
            colours[outcome] = OK_COLOUR
        elif outcome == UNFINISHED:
            colours[outcome] = UNFINISHED_COLOUR
        elif others < len(PALETTE):
            colours[outcome] = PALETTE[others]
            others += 1
        else:
            # Past the palette, golden-angle hues keep neighbours apart.
            colours[outcome] = f"hsl({(others * 137.508) % 360:.0f}, 65%, 45%)"
            others += 1
    return colours


def tick_step(duration: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if duration / step <= 12:
            return step
    return 3600 * math.ceil(duration / 3600 / 12)


def bin_seconds(duration: float) -> float:
    return float(max(1, math.ceil(duration / MAX_BINS)))


def _pack(windows: list[Window], duration: float) -> list[int]:
    """A row per fault, reusing a row once the fault drawn on it has ended."""
    row_ends: list[float] = []
    rows: list[int] = []
    for window in windows:
        end = duration if window.end is None else window.end
        for row, row_end in enumerate(row_ends):
            if row_end <= window.start:
                row_ends[row] = end
                rows.append(row)
                break
        else:
            row_ends.append(end)
            rows.append(len(row_ends) - 1)
    return rows


class _Canvas:
    def __init__(self, duration: float) -> None:
        self.duration = duration if duration > 0 else 1.0
        self.parts: list[str] = []

    def x(self, seconds: float) -> float:
        clamped = min(max(seconds, 0.0), self.duration)
        return PLOT_LEFT + clamped / self.duration * (PLOT_RIGHT - PLOT_LEFT)

    def add(self, part: str) -> None:
        self.parts.append(part)

    def rect(
        self, x: float, y: float, w: float, h: float, fill: str, title: str = "", extra: str = ""
    ) -> None:
        body = f"<title>{_esc(title)}</title>" if title else ""
        self.add(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0.5))}" '
            f'height="{_num(h)}" fill="{fill}"{extra}>{body}</rect>'
        )

    def text(self, x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> None:
        css = f' class="{cls}"' if cls else ""
        self.add(
            f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{css}>{_esc(text)}</text>'
        )

    def lane(self, top: float, height: float, name: str, note: str = "") -> None:
        self.rect(PLOT_LEFT, top, PLOT_RIGHT - PLOT_LEFT, height, "#f6f7f9")
        self.text(PLOT_LEFT - 8, top + min(height / 2, 14) + 4, name, "lane", "end")
        if note:
            self.text(PLOT_LEFT - 8, top + min(height / 2, 14) + 18, note, "note", "end")


def _stacked_bars(
    canvas: _Canvas,
    top: float,
    height: float,
    bins: dict[int, Counter[str]],
    size: float,
    colours: dict[str, str],
    order: list[str],
) -> int:
    peak = max((sum(counts.values()) for counts in bins.values()), default=0)
    if peak == 0:
        return 0
    step = canvas.x(size) - canvas.x(0)
    # Narrow bins touch (a gap would stripe the lane); wide ones keep a gap to read as bars.
    width = step * 0.85 if step >= 4 else step + 0.1
    for index in sorted(bins):
        counts = bins[index]
        start = index * size
        base = top + height
        for outcome in order:
            count = counts.get(outcome, 0)
            if count == 0:
                continue
            bar = count / peak * height
            base -= bar
            label = f"{_num(start)}–{_num(start + size)} s: {outcome} × {count}"
            canvas.rect(canvas.x(start), base, width, bar, colours[outcome], label)
    return peak


def _bin(
    events: Iterable[tuple[float, str]], size: float, duration: float
) -> dict[int, Counter[str]]:
    last = max(math.ceil(duration / size) - 1, 0)
    bins: dict[int, Counter[str]] = {}
    for at, outcome in events:
        index = min(max(int(at // size), 0), last)
        bins.setdefault(index, Counter())[outcome] += 1
    return bins


def _legend(totals: Counter[str], colours: dict[str, str], order: list[str]) -> list[LegendEntry]:
    return [LegendEntry(outcome, colours[outcome], totals[outcome]) for outcome in order]


def _order(totals: Counter[str]) -> list[str]:
    # ok first so it sits at the bottom of each stack; the rest by how often they happened.
    rest = sorted((o for o in totals if o not in ("ok", UNFINISHED)), key=lambda o: (-totals[o], o))
    return (
        (["ok"] if "ok" in totals else []) + rest + ([UNFINISHED] if UNFINISHED in totals else [])
    )


@dataclass(frozen=True)
class _Layout:
    """Where each lane sits, top to bottom; the fault bands span from ``top`` to ``bottom``."""

    top: float
    faults: float
    fault_height: float
    marks_height: float
    broker: float
    tokens: float
    system: float
    health: float
    bottom: float

    @classmethod
    def for_timeline(cls, timeline: Timeline, fault_rows: list[int]) -> _Layout:
        marks_height = ROW * 2.0 if timeline.marks else 0.0
        fault_height = max(ROW * (max(fault_rows, default=-1) + 1) + marks_height, ROW)
        top = 8.0
        broker = top + fault_height + 6
        tokens = broker + BAR_LANE + 6
        system = tokens + THIN_LANE + 6
        health = system + BAR_LANE + 6
        return cls(
            top=top,
            faults=top,
            fault_height=fault_height,
            marks_height=marks_height,
            broker=broker,
            tokens=tokens,
            system=system,
            health=health,
            bottom=health + THIN_LANE,
        )


def draw_timeline(timeline: Timeline) -> Drawing:
    canvas = _Canvas(timeline.duration)
    size = bin_seconds(canvas.duration)
    fault_rows = _pack(timeline.faults, canvas.duration)
    layout = _Layout.for_timeline(timeline, fault_rows)
    tokens = [call.at for call in timeline.broker_calls if call.token_issued]

    canvas.lane(layout.faults, layout.fault_height, "faults")
    canvas.lane(layout.broker, BAR_LANE, "broker requests")
    canvas.lane(layout.tokens, THIN_LANE, "token issuances", f"{len(tokens)} issued")
    canvas.lane(layout.system, BAR_LANE, "system calls")
    canvas.lane(layout.health, THIN_LANE, "health")
    # Between the lane backgrounds and what happened, so the bands tint every lane.
    _fault_bands(canvas, timeline, layout)
    _fault_bars(canvas, timeline, fault_rows, layout)

    broker_events = [(call.at, call.outcome) for call in timeline.broker_calls]
    broker_legend = _bar_lane(canvas, layout.broker, broker_events, size)
    _token_ticks(canvas, tokens, layout.tokens)
    system_events = [
        (call.at, UNFINISHED if call.latency is None else call.outcome)
        for call in timeline.system_calls
    ]
    system_legend = _bar_lane(canvas, layout.system, system_events, size)
    _health(canvas, timeline, layout.health)

    _fault_edges(canvas, timeline, layout)
    _marks(canvas, timeline, layout)
    _axis(canvas, layout.bottom, layout.top)
    height = layout.bottom + AXIS
    svg = (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {_num(height)}" width="{WIDTH}" '
        f'height="{_num(height)}" role="img" aria-label="timeline">'
        + "".join(canvas.parts)
        + "</svg>"
    )
    return Drawing(svg, broker_legend, system_legend, size)


def _window_end(window: Window, duration: float) -> float:
    return duration if window.end is None else window.end


def _fault_bands(canvas: _Canvas, timeline: Timeline, layout: _Layout) -> None:
    for window in timeline.faults:
        x0, x1 = canvas.x(window.start), canvas.x(_window_end(window, canvas.duration))
        height = layout.bottom - layout.top
        canvas.rect(x0, layout.top, x1 - x0, height, FAULT_FILL, extra=' opacity="0.12"')


def _fault_edges(canvas: _Canvas, timeline: Timeline, layout: _Layout) -> None:
    # Bars drawn over a band hide it; its edges on top still show when the fault began and ended.
    for window in timeline.faults:
        edges = [window.start] if window.end is None else [window.start, window.end]
        for at in edges:
            x = _num(canvas.x(at))
            canvas.add(
                f'<line x1="{x}" x2="{x}" y1="{_num(layout.top)}" y2="{_num(layout.bottom)}" '
                'class="fedge"/>'
            )


def _fault_bars(
    canvas: _Canvas, timeline: Timeline, fault_rows: list[int], layout: _Layout
) -> None:
    for window, row in zip(timeline.faults, fault_rows, strict=True):
        end = _window_end(window, canvas.duration)
        x0, x1 = canvas.x(window.start), canvas.x(end)
        y = layout.faults + layout.marks_height + row * ROW + 2
        until = "the end" if window.end is None else _seconds(window.end)
        title = f"{window.label} on {window.target}: {_seconds(window.start)} to {until}"
        canvas.rect(x0, y, x1 - x0, ROW - 4, FAULT_FILL, title, ' opacity="0.75"')
        canvas.text(x0 + 3, y + ROW - 8, f"{window.label} ({window.target})", "flabel")


def _bar_lane(
    canvas: _Canvas, top: float, events: list[tuple[float, str]], size: float
) -> list[LegendEntry]:
    totals = Counter(outcome for _, outcome in events)
    order = _order(totals)
    colours = outcome_colours(order)
    bins = _bin(events, size, canvas.duration)
    peak = _stacked_bars(canvas, top, BAR_LANE, bins, size, colours, order)
    per = "per s" if size == 1 else f"per {_num(size)} s"
    canvas.text(PLOT_LEFT - 8, top + 32, f"max {peak} {per}", "note", "end")
    return _legend(totals, colours, order)


def _token_ticks(canvas: _Canvas, tokens: list[float], top: float) -> None:
    drawn: set[float] = set()
    for at in tokens:
        # Ticks closer than half a pixel are one tick on screen; draw it once.
        x = round(canvas.x(at) * 2) / 2
        if x in drawn:
            continue
        drawn.add(x)
        canvas.add(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(top + 3)}" '
            f'y2="{_num(top + THIN_LANE - 3)}" class="token">'
            f"<title>token issued at {_esc(_seconds(at))}</title></line>"
        )


def _marks(canvas: _Canvas, timeline: Timeline, layout: _Layout) -> None:
    for index, mark in enumerate(timeline.marks):
        x = canvas.x(mark.at)
        canvas.add(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(layout.top)}" '
            f'y2="{_num(layout.bottom)}" class="mark">'
            f"<title>{_esc(mark.label)} at {_esc(_seconds(mark.at))}</title></line>"
        )
        # Alternate rows so two marks close together do not print over each other.
        canvas.text(x + 3, layout.faults + ROW * (index % 2) + ROW - 5, mark.label, "mlabel")


def _health(canvas: _Canvas, timeline: Timeline, top: float) -> None:
    samples = sorted(timeline.health, key=lambda sample: sample.at)
    # Consecutive samples in one state are one band: fewer elements, same picture.
    index = 0
    while index < len(samples):
        first = samples[index]
        reasons: list[str] = list(first.reasons)
        index += 1
        while index < len(samples) and samples[index].state == first.state:
            reasons.extend(r for r in samples[index].reasons if r not in reasons)
            index += 1
        end = samples[index].at if index < len(samples) else canvas.duration
        x0, x1 = canvas.x(first.at), canvas.x(end)
        why = f" ({'; '.join(reasons)})" if reasons else ""
        title = f"{first.state} {_seconds(first.at)} to {_seconds(end)}{why}"
        canvas.rect(x0, top + 3, x1 - x0, THIN_LANE - 6, HEALTH_COLOURS[first.state], title)


def _axis(canvas: _Canvas, bottom: float, top: float) -> None:
    step = tick_step(canvas.duration)
    canvas.add(
        f'<line x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{_num(bottom)}" y2="{_num(bottom)}" '
        'class="axis"/>'
    )
    count = int(canvas.duration / step + 1e-9)
    for tick in range(count + 1):
        seconds = tick * step
        x = canvas.x(seconds)
        canvas.add(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(top)}" y2="{_num(bottom)}" '
            'class="grid"/>'
        )
        canvas.text(x, bottom + 14, _num(seconds), "tick", "middle")
    canvas.text(PLOT_RIGHT, bottom + 29, "seconds since the scenario started", "note", "end")
