"""One self-contained HTML file: a summary of every scenario, then each one's checks and timeline.

Nothing is fetched from anywhere (no CSS, scripts or fonts from outside), so the file can be
attached to a CI run or mailed and still open anywhere. Scenario text is user input: every
string goes through ``html.escape``.
"""

from __future__ import annotations

import html
from os import PathLike
from pathlib import Path

from harness.report.common import compression, tally, verdict
from harness.report.timeline_svg import HEALTH_COLOURS, Drawing, LegendEntry, draw_timeline
from harness.result import ScenarioResult, Timeline

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
  margin: 2rem auto; max-width: 1060px; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin: 0; }
section { border-top: 2px solid #dde1e8; margin-top: 2.5rem; padding-top: 1rem; }
table { border-collapse: collapse; width: 100%; margin: .75rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e4e7ec;
  vertical-align: top; }
th { background: #f3f4f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fdecea; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: .3rem; color: #fff;
  font-weight: 700; font-size: .85rem; vertical-align: middle; }
.badge.PASS { background: #2ca02c; } .badge.FAIL { background: #d62728; }
.badge.ERROR { background: #6b3fa0; }
.tag { display: inline-block; background: #e8ecf3; border-radius: .3rem; padding: 0 .4rem;
  margin-right: .25rem; font-size: .85rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dl.facts dt { color: #5b6475; } dl.facts dd { margin: 0; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre.error { background: #f7f0fb; border-left: 4px solid #6b3fa0; padding: .6rem;
  white-space: pre-wrap; }
p.glance { background: #f3f4f7; padding: .4rem .6rem; border-radius: .3rem; }
.legend { margin: .2rem 0; } .legend span.key { margin-right: 1rem; white-space: nowrap; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: .15rem;
  vertical-align: -.1rem; margin-right: .25rem; }
svg.timeline { max-width: 100%; height: auto; font-size: 11px; }
/* Anti-aliased edges of adjacent one-pixel bins show as stripes. */
svg.timeline rect { shape-rendering: crispEdges; }
svg .lane { font-weight: 600; fill: #1d2330; } svg .note { fill: #5b6475; font-size: 10px; }
svg .tick { fill: #5b6475; } svg .flabel { fill: #3b2300; font-size: 10px; }
svg .mlabel { fill: #1d2330; font-size: 10px; font-weight: 600; }
svg .grid { stroke: #000; stroke-opacity: .07; } svg .axis { stroke: #5b6475; }
svg .mark { stroke: #1d2330; stroke-width: 1.2; stroke-dasharray: 4 3; }
svg .token { stroke: #1f3f8f; stroke-width: 2; }
svg .fedge { stroke: #c85a00; stroke-width: 1.2; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(result: ScenarioResult) -> str:
    outcome = verdict(result)
    return f'<span class="badge {outcome}">{outcome}</span>'


def _anchor(index: int) -> str:
    # Built from the position, never the name, so any name makes a valid, unique id.
    return f"scenario-{index + 1}"


def _summary_table(results: list[ScenarioResult]) -> str:
    rows = []
    for index, result in enumerate(results):
        passed = sum(1 for check in result.checks if check.passed)
        rows.append(
            f'<tr><td><a href="#{_anchor(index)}">{_esc(result.name)}</a></td>'
            f"<td>{_badge(result)}</td>"
            f'<td class="num">{passed} / {len(result.checks)}</td>'
            f'<td class="num">{result.simulated_seconds:.1f}</td>'
            f'<td class="num">{result.wall_seconds:.2f}</td>'
            f'<td class="num">{_esc(compression(result))}</td></tr>'
        )
    return (
        "<table><thead><tr><th>scenario</th><th>verdict</th><th>checks passed</th>"
        "<th>simulated s</th><th>wall s</th><th>compression</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _facts(result: ScenarioResult) -> str:
    tags = "".join(f'<span class="tag">{_esc(tag)}</span>' for tag in result.tags) or "—"
    facts = [
        ("file", f"<code>{_esc(result.path)}</code>"),
        ("tags", tags),
        ("seed", _esc(result.seed)),
        ("clock", _esc(result.clock)),
        (
            "time",
            f"{result.simulated_seconds:.1f} s simulated in {result.wall_seconds:.2f} s wall "
            f"({_esc(compression(result))})",
        ),
        ("journal digest", f"<code>{_esc(result.journal_digest)}</code>"),
    ]
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
        + "</dl>"
    )


def _checks_table(result: ScenarioResult) -> str:
    if not result.checks:
        return "<p>No checks recorded.</p>"
    rows = []
    for check in result.checks:
        css = "" if check.passed else ' class="failed"'
        mark = "✓ passed" if check.passed else "✗ failed"
        where = f"<code>{_esc(check.where)}</code>" if check.where else ""
        rows.append(
            f"<tr{css}><td>{_esc(check.kind)}</td><td>{_esc(check.description)}</td>"
            f"<td>{mark}</td><td>{_esc(check.observed)}</td><td>{where}</td></tr>"
        )
    return (
        "<table><thead><tr><th>kind</th><th>description</th><th>passed</th><th>observed</th>"
        f"<th>where</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _glance(timeline: Timeline) -> str:
    """When the fault hit and when the system came back, in words, above the picture."""
    events = [(window.start, window.label) for window in timeline.faults]
    events += [(mark.at, mark.label) for mark in timeline.marks]
    parts = []
    if events:
        at, label = min(events)
        parts.append(f"first fault: {_esc(label)} at {at:.1f} s")
    samples = sorted(timeline.health, key=lambda sample: sample.at)
    trouble = [sample for sample in samples if sample.state != "healthy"]
    if trouble:
        parts.append(f"first {_esc(trouble[0].state)} at {trouble[0].at:.1f} s")
        later = [s for s in samples if s.at > trouble[-1].at and s.state == "healthy"]
        if later:
            parts.append(f"healthy again at {later[0].at:.1f} s")
        else:
            parts.append(f"still {_esc(trouble[-1].state)} when the run ended")
    elif samples:
        parts.append("healthy throughout")
    return f'<p class="glance">{" · ".join(parts)}</p>' if parts else ""


def _legend(name: str, entries: list[LegendEntry]) -> str:
    if not entries:
        return f'<div class="legend"><strong>{_esc(name)}:</strong> none</div>'
    keys = "".join(
        f'<span class="key"><span class="swatch" style="background:{entry.colour}"></span>'
        f"{_esc(entry.label)} ({entry.count:,})</span>"
        for entry in entries
    )
    return f'<div class="legend"><strong>{_esc(name)}:</strong> {keys}</div>'


def _health_legend() -> str:
    keys = "".join(
        f'<span class="key"><span class="swatch" style="background:{colour}"></span>{state}</span>'
        for state, colour in HEALTH_COLOURS.items()
    )
    return f'<div class="legend"><strong>health:</strong> {keys}</div>'


def _timeline(result: ScenarioResult) -> str:
    if result.timeline is None:
        return "<p><em>no timeline (the run did not start)</em></p>"
    drawing: Drawing = draw_timeline(result.timeline)
    per = "second" if drawing.bin_seconds == 1 else f"{drawing.bin_seconds:g} seconds"
    return (
        "<h3>Timeline</h3>"
        + _glance(result.timeline)
        + drawing.svg
        + _legend(f"broker requests per {per}", drawing.broker_legend)
        + _legend(f"system calls per {per}", drawing.system_legend)
        + _health_legend()
    )


def _section(index: int, result: ScenarioResult) -> str:
    summary = f'<p class="summary">{_esc(result.summary)}</p>' if result.summary else ""
    error = f'<pre class="error">{_esc(result.error)}</pre>' if result.error is not None else ""
    return (
        f'<section id="{_anchor(index)}"><h2>{_esc(result.name)} {_badge(result)}</h2>'
        f"{summary}{_facts(result)}{error}<h3>Checks</h3>{_checks_table(result)}"
        f"{_timeline(result)}</section>"
    )


def render_html(results: list[ScenarioResult], title: str = "Squall scenario report") -> str:
    sections = "".join(_section(index, result) for index, result in enumerate(results))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1><p>{_esc(tally(results))}</p>"
        f"{_summary_table(results)}{sections}</body></html>\n"
    )


def write_html(
    results: list[ScenarioResult],
    path: str | PathLike[str],
    title: str = "Squall scenario report",
) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(results, title), encoding="utf-8")
