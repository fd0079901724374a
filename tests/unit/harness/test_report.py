"""The report renderers, fed hand-built results: JSON, JUnit XML, HTML and the terminal."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from harness.report import (
    Progress,
    print_summary,
    summary_table,
    write_html,
    write_json,
    write_junit,
)
from harness.result import (
    BrokerCall,
    Check,
    HealthSample,
    Mark,
    ScenarioResult,
    SystemCall,
    Timeline,
    Window,
)

OBSERVED = "3 token requests in 60 s starting at t=61.0"
XSS = "<script>alert(1)</script>"


def storm_timeline() -> Timeline:
    return Timeline(
        duration=120.0,
        faults=[Window(label="latency 2s", target="broker", start=5.0, end=40.0)],
        marks=[Mark(at=5.0, label="expire every token")],
        broker_calls=[
            BrokerCall(at=0.1, path="/oauth2/tokenP", outcome="ok", token_issued=True),
            *(BrokerCall(at=5.0 + i / 100, path="/q", outcome="EGW00123") for i in range(200)),
            BrokerCall(at=5.5, path="/oauth2/tokenP", outcome="EGW00133"),
            BrokerCall(at=65.0, path="/oauth2/tokenP", outcome="ok", token_issued=True),
            *(BrokerCall(at=65.0 + i / 18, path="/q", outcome="ok") for i in range(200)),
        ],
        system_calls=[
            SystemCall(
                at=5.0,
                workload="quotes",
                operation="get_price",
                outcome="TokenCooldown",
                latency=0.01,
            ),
            SystemCall(
                at=66.0, workload="quotes", operation="get_price", outcome="ok", latency=0.05
            ),
            SystemCall(
                at=110.0, workload="quotes", operation="get_price", outcome="ok", latency=None
            ),
        ],
        health=[
            HealthSample(at=0.0, state="healthy"),
            HealthSample(at=5.0, state="degraded", reasons=("token expired",)),
            HealthSample(at=70.0, state="healthy"),
        ],
    )


def passing() -> ScenarioResult:
    return ScenarioResult(
        name="token storm survives",
        path="scenarios/broker/token_storm.yaml",
        seed=7,
        clock="virtual",
        passed=True,
        simulated_seconds=120.0,
        wall_seconds=0.3,
        journal_digest="sha256:aaaa",
        checks=[Check("at most 3 token requests", True, "2 token requests", where="a.yaml:9:5")],
        timeline=storm_timeline(),
        summary="200 quotes through an expired-token storm",
        tags=("broker", "token"),
    )


def failing(name: str = "naive client storms the broker") -> ScenarioResult:
    return ScenarioResult(
        name=name,
        path="scenarios/broker/naive.yaml",
        seed=8,
        clock="virtual",
        passed=False,
        simulated_seconds=120.0,
        wall_seconds=0.5,
        journal_digest="sha256:bbbb",
        checks=[
            Check("at most one token per minute", False, OBSERVED, where="naive.yaml:12:7"),
            Check("no EGW00201", False, "14 answers with EGW00201 (초당 거래건수를 초과)"),
            Check("every order acknowledged", True, "12 of 12", kind="invariant"),
        ],
        timeline=storm_timeline(),
    )


def broken() -> ScenarioResult:
    return ScenarioResult(
        name="stack did not start",
        path="scenarios/pg.yaml",
        seed=9,
        clock="real",
        passed=False,
        simulated_seconds=0.0,
        wall_seconds=0.1,
        journal_digest="",
        error="PostgreSQL binaries not found\ninstall postgresql-16 and retry",
    )


@pytest.fixture
def results() -> list[ScenarioResult]:
    return [passing(), failing(), broken()]


# --- JSON ---------------------------------------------------------------------------------


def test_json_round_trips_with_the_documented_keys(
    results: list[ScenarioResult], tmp_path: Path
) -> None:
    path = tmp_path / "out" / "report.json"
    write_json(results, path)
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)

    assert set(document) == {"scenarios", "passed"}
    assert document["passed"] is False
    assert document == {"scenarios": [r.to_json() for r in results], "passed": False}
    first = document["scenarios"][1]
    assert set(first) == {
        "name", "path", "passed", "seed", "clock", "simulated_seconds", "wall_seconds",
        "journal_digest", "error", "expectations",
    }  # fmt: skip
    assert set(first["expectations"][0]) == {"description", "kind", "passed", "observed", "where"}
    assert first["expectations"][0]["observed"] == OBSERVED
    assert "초당 거래건수를 초과" in text  # ensure_ascii=False keeps Korean readable
    assert text.startswith('{\n  "scenarios"')  # indent 2


def test_json_passes_only_when_every_scenario_passed(tmp_path: Path) -> None:
    write_json([passing()], tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["passed"] is True


# --- JUnit --------------------------------------------------------------------------------


def _junit(results: list[ScenarioResult], tmp_path: Path) -> ET.Element:
    path = tmp_path / "junit.xml"
    write_junit(results, path, suite_name="nightly")
    return ET.parse(path).getroot()


def test_junit_counts_and_cases(results: list[ScenarioResult], tmp_path: Path) -> None:
    root = _junit(results, tmp_path)
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "nightly"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert float(suite.get("time", "0")) == pytest.approx(0.9)
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.name for r in results]
    assert [c.get("classname") for c in cases] == [
        "scenarios.broker",
        "scenarios.broker",
        "scenarios",
    ]
    assert cases[0].get("time") == "0.300"
    assert cases[0].find("failure") is None
    assert cases[0].find("error") is None


def test_junit_failure_lists_failed_checks(results: list[ScenarioResult], tmp_path: Path) -> None:
    case = _junit(results, tmp_path).findall(".//testcase")[1]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "2 of 3 checks failed"
    text = failure.text or ""
    assert f"- at most one token per minute: {OBSERVED} (naive.yaml:12:7)" in text
    assert "- no EGW00201: 14 answers" in text
    assert "every order acknowledged" not in text  # passed checks are not failures


def test_junit_error_and_properties(results: list[ScenarioResult], tmp_path: Path) -> None:
    cases = _junit(results, tmp_path).findall(".//testcase")
    error = cases[2].find("error")
    assert error is not None
    assert error.get("message") == "PostgreSQL binaries not found"
    assert "install postgresql-16" in (error.text or "")
    assert cases[2].find("failure") is None
    properties = {p.get("name"): p.get("value") for p in cases[1].iter("property")}
    assert properties == {
        "seed": "8",
        "clock": "virtual",
        "simulated_seconds": "120.000",
        "journal_digest": "sha256:bbbb",
    }


def test_junit_survives_control_characters_in_observed_values(tmp_path: Path) -> None:
    result = failing()
    result.checks = [Check("body parses", False, "truncated body b'\x00\x1b{'")]
    failure = _junit([result], tmp_path).find(".//failure")
    assert failure is not None
    assert "truncated body" in (failure.text or "")


# --- HTML ---------------------------------------------------------------------------------


def _html(results: list[ScenarioResult], tmp_path: Path) -> str:
    path = tmp_path / "report.html"
    write_html(results, path, title="nightly run")
    return path.read_text(encoding="utf-8")


def test_html_is_self_contained(results: list[ScenarioResult], tmp_path: Path) -> None:
    page = _html(results, tmp_path)
    references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, re.IGNORECASE)
    assert references, "the summary table links to each scenario"
    assert all(ref.startswith("#") for ref in references), references
    assert "http://" not in page
    assert "https://" not in page
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)


def test_html_shows_verdicts_checks_and_timeline(
    results: list[ScenarioResult], tmp_path: Path
) -> None:
    page = _html(results, tmp_path)
    assert "<title>nightly run</title>" in page
    assert page.count("<svg") == 2  # the two scenarios that ran
    assert "latency 2s" in page  # the fault window's label
    assert "expire every token" in page  # the mark's label
    assert '<span class="badge FAIL">FAIL</span>' in page
    assert '<span class="badge PASS">PASS</span>' in page
    assert '<tr class="failed">' in page
    assert OBSERVED in page
    for outcome in ("EGW00123", "EGW00133", "TokenCooldown", "unfinished"):
        assert outcome in page, outcome
    for anchor in ("scenario-1", "scenario-2", "scenario-3"):
        assert f'href="#{anchor}"' in page
        assert f'id="{anchor}"' in page
    assert "healthy again at 70.0 s" in page


def test_html_without_timeline_says_so_and_shows_the_error(tmp_path: Path) -> None:
    page = _html([broken()], tmp_path)
    assert "no timeline (the run did not start)" in page
    assert "PostgreSQL binaries not found" in page
    assert "<svg" not in page
    assert '<span class="badge ERROR">ERROR</span>' in page


def test_html_escapes_scenario_text(tmp_path: Path) -> None:
    result = failing(name=XSS)
    result.tags = (XSS,)
    result.summary = XSS
    assert result.timeline is not None
    result.timeline.faults.append(Window(label=XSS, target="broker", start=1.0, end=None))
    page = _html([result], tmp_path)
    assert XSS not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_bins_a_busy_timeline(tmp_path: Path) -> None:
    outcomes = ("ok", "ok", "ok", "EGW00201", "HTTP 503")
    timeline = Timeline(
        duration=600.0,
        broker_calls=[
            BrokerCall(at=i * 0.03, path="/q", outcome=outcomes[i % 5]) for i in range(20_000)
        ],
        system_calls=[
            SystemCall(at=i * 0.1, workload="w", operation="o", outcome="ok", latency=0.1)
            for i in range(6_000)
        ],
    )
    result = passing()
    result.timeline = timeline
    page = _html([result], tmp_path)
    # Binned per second: a few rects per second, nowhere near one per call.
    assert page.count("<rect") < 600 * 5
    assert len(page.encode()) < 1_500_000
    assert "EGW00201 (4,000)" in page  # the legend counts every call


# --- terminal -----------------------------------------------------------------------------


def _render(results: list[ScenarioResult]) -> str:
    console = Console(record=True, width=120)
    console.print(summary_table(results))
    return console.export_text()


def test_summary_table_shows_verdicts_and_failed_checks(results: list[ScenarioResult]) -> None:
    text = _render(results)
    for header in ("scenario", "verdict", "simulated s", "wall s", "compression"):
        assert header in text
    assert "PASS" in text
    assert "FAIL" in text
    assert "ERROR" in text
    assert "400×" in text  # 120 s simulated in 0.3 s wall
    assert "at most one token per minute" in text
    assert OBSERVED in text
    assert "every order acknowledged" not in text


def test_summary_table_does_not_interpret_markup_in_names() -> None:
    text = _render([failing(name="[bold]storm[/bold]")])
    assert "[bold]storm[/bold]" in text


def test_print_summary_ends_with_the_tally(results: list[ScenarioResult]) -> None:
    console = Console(record=True, width=120)
    print_summary(results, console)
    lines = console.export_text().strip().splitlines()
    assert lines[-1] == "1 passed, 2 failed (1 with an error)"


def test_progress_prints_one_line_per_start_and_finish_off_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)
    assert not console.is_terminal
    with Progress(console) as progress:
        handle = progress.start("token storm", 120.0)
        for second in range(121):
            progress.advance(handle, float(second))
        progress.finish(handle, passed=False)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("▶ token storm")
    assert "FAIL" in lines[1]


def test_progress_draws_bars_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, force_interactive=True)
    with Progress(console) as progress:
        handle = progress.start("token storm", 120.0)
        progress.advance(handle, 60.0)
        progress.advance(handle, 500.0)  # past the end: the bar stops at the duration
        progress.finish(handle, passed=True)
    output = out.getvalue()
    assert "token storm" in output
    assert "120.0/120 s simulated" in output
    assert "PASS" in output
