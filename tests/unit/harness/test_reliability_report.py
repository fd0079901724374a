"""The reliability report: recovery times derived from a run's timeline, the load and
faults in words, the Markdown table, the README's section, and the exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.reliability import run as reliability
from harness.reliability.readme import END, START, ReadmeError, replace_section, write_section
from harness.reliability.render import recovery_cell, render_table
from harness.reliability.rows import (
    Recovery,
    Row,
    faults_injected,
    healthy_again,
    load_held,
    prices_again,
    recoveries,
    served_again,
)
from harness.result import (
    FeedConnection,
    HealthSample,
    HealthState,
    Mark,
    Strike,
    SystemCall,
    Tally,
    Timeline,
    UnknownOutcome,
    Window,
)
from harness.scenario import load_file, load_text
from harness.scenario.model import FaultSpec

ROOT = Path(__file__).resolve().parents[3]


def health(*spells: tuple[float, HealthState]) -> list[HealthSample]:
    """A sample a second from 0 to 100, each ``(from, state)`` holding until the next."""
    samples = []
    for second in range(101):
        state: HealthState = "healthy"
        for start, spell_state in spells:
            if second >= start:
                state = spell_state
        samples.append(HealthSample(float(second), state))
    return samples


# --- recovery -----------------------------------------------------------------------------


def test_healthy_again_counts_from_the_fault_end_to_the_end_of_its_spell() -> None:
    samples = health((11, "unhealthy"), (30, "degraded"), (42, "healthy"))
    assert healthy_again(samples, start=10, end=40) == 2.0


def test_an_action_is_measured_from_its_moment_though_health_reacts_a_second_later() -> None:
    samples = health((21, "unhealthy"), (90, "healthy"))
    assert healthy_again(samples, start=20, end=20) == 70.0


def test_a_system_that_stayed_healthy_or_was_well_before_the_end_recovers_in_zero() -> None:
    assert healthy_again(health(), start=10, end=40) == 0.0
    assert healthy_again(health((12, "degraded"), (15, "healthy")), start=10, end=40) == 0.0


def test_a_spell_long_after_the_fault_is_not_the_faults() -> None:
    samples = health((60, "unhealthy"), (70, "healthy"))
    assert healthy_again(samples, start=10, end=40) == 0.0


def test_a_system_still_ill_at_the_end_has_not_recovered() -> None:
    assert healthy_again(health((11, "unhealthy")), start=10, end=40) is None


def test_served_again_is_the_first_success_started_after_the_end() -> None:
    timeline = Timeline(
        duration=100,
        system_calls=[
            SystemCall(19.0, "q", "quote", "ok", 0.1),  # before: not counted
            SystemCall(20.0, "q", "quote", "TokenCooldown", 0.2),
            SystemCall(20.0, "q", "quote", "ok", 40.5),
            SystemCall(21.0, "q", "quote", "ok", 39.0),
        ],
    )
    assert served_again(timeline, 20.0) == 40.0
    assert served_again(timeline, 80.0) is None


def test_prices_again_waits_for_a_trade_on_a_later_connection() -> None:
    timeline = Timeline(
        duration=100,
        feed_connections=[
            FeedConnection(1, 0.0, 1.0, 50.0),
            FeedConnection(2, 59.0, None, 59.0),  # refused at once: no trade
            FeedConnection(3, 61.0, 62.0, None),
        ],
    )
    assert prices_again(timeline, 50.0, 1) == 12.0
    assert prices_again(timeline, 70.0, 3) is None


SCENARIO = """
name: mixed
duration: 100
needs: [broker, feed, database]
timeline:
  - {name: quotes, at: 0, quotes: {rate: 2}}
  - {name: crowd, at: 5, quotes: {burst: 1000}}
  - {name: expiry, at: 20, action: expire-tokens}
  - {name: outage, at: 10, for: 30, fault: {target: database, do: {kind: outage}}}
  - {name: resets, at: 30, until: 90, fault: {target: feed, do: {kind: reset}, every: 9}}
  - {name: lost answers, at: 0, fault: {match: {kind: order}, do: {kind: drop}}}
"""


def mixed_timeline() -> Timeline:
    return Timeline(
        duration=100,
        faults=[
            Window("outage", "database", 10.0, 40.0),
            Window("resets", "feed", 30.0, 90.0),
            Window("lost answers", "broker", 0.0, None),
        ],
        marks=[Mark(20.0, "expiry: expired 1 token(s)")],
        health=health((11, "unhealthy"), (43, "healthy")),
        system_calls=[SystemCall(40.0, "quotes", "quote", "ok", 0.5)],
        strikes=[
            Strike(31.0, "resets", "feed", "reset", 1),
            Strike(60.0, "lost answers", "broker", "drop"),
        ],
        feed_connections=[FeedConnection(1, 0.0, 1.0, 31.0), FeedConnection(2, 31.5, 32.0, None)],
        unknown_outcomes=[UnknownOutcome("a", 61.0, 63.0)],
    )


def test_every_fault_gets_the_recoveries_that_apply_to_it() -> None:
    found = recoveries(load_text(SCENARIO), mixed_timeline())
    assert found == [
        Recovery("expiry", "served", 20.5),  # the quote at 40 s, answered at 40.5 s
        Recovery("expiry", "healthy", 0.0),  # the spell began before it: the outage's
        Recovery("outage", "served", 0.5),
        Recovery("outage", "healthy", 3.0),
        Recovery("resets", "prices", 1.0),
        Recovery("lost answers", "settled", 2.0),
    ]


def test_the_load_is_said_from_the_scenarios_workloads() -> None:
    assert load_held(load_text(SCENARIO)) == [
        "2 quotes/s",
        "1,000 concurrent quote requests",
        "over 100 s",
    ]


def test_the_faults_say_how_often_they_struck_or_how_long_they_lasted() -> None:
    assert faults_injected(load_text(SCENARIO), mixed_timeline()) == [
        "lost answers (broker, ×1)",
        "outage (database, 30 s)",
        "expiry: expired 1 token(s)",
        "resets (feed, ×1)",
    ]


# --- the table ----------------------------------------------------------------------------


def a_row(**changes: object) -> Row:
    fields: dict[str, object] = {
        "scenario": "database outage",
        "path": "scenarios/storage/database-outage.yaml",
        "verdict": "PASS",
        "checks_passed": 10,
        "checks": 10,
        "load": ["4 quotes/s", "over 52 s"],
        "faults": ["outage (database, 30 s)"],
        "recoveries": [Recovery("outage", "healthy", 2.0)],
        "tallies": [Tally("orders", 26, 0, 0, 0), Tally("calls", 234, 0)],
        "wall_seconds": 3.25,
    }
    fields.update(changes)
    return Row(**fields)  # type: ignore[arg-type]


def test_a_row_reads_as_the_run_went() -> None:
    table = render_table([a_row()])
    assert (
        "| [database outage](scenarios/storage/database-outage.yaml) | 4 quotes/s, over 52 s | "
        "outage (database, 30 s) | healthy 2.0 s | 0 | 0 | 0 | 26 orders · 234 calls | "
        "✓ 10 of 10 passed |"
    ) in table.splitlines()


def test_wall_time_is_only_in_the_build_copy() -> None:
    assert "3.2" not in render_table([a_row()])
    assert "wall s (this machine)" not in render_table([a_row()])
    assert render_table([a_row()], wall=True).splitlines()[2].endswith("| 3.2 |")


def test_counts_nothing_could_have_are_a_dash_and_a_loss_stands_out() -> None:
    row = a_row(tallies=[Tally("calls", 1180, 3)])
    cells = render_table([row]).splitlines()[2].split(" | ")
    assert cells[4:7] == ["**3**", "—", "—"]


def test_a_pipe_in_a_name_does_not_split_the_cell() -> None:
    line = render_table([a_row(scenario="a | b")]).splitlines()[2]
    assert "[a \\| b]" in line


def test_several_recoveries_give_the_worst_its_fault_and_the_median() -> None:
    cell = recovery_cell(
        [
            Recovery("5xx burst", "healthy", 11.0),
            Recovery("outage", "healthy", 4.0),
            Recovery("expiry", "healthy", 0.0),
            Recovery("resets", "prices", 1.0),
            Recovery("resets", "prices", 2.0),
        ]
    )
    assert cell == (
        "healthy ≤ 11.0 s (median 4.0 s of 3, 5xx burst); prices ≤ 2.0 s (median 1.5 s of 2)"
    )


def test_a_recovery_that_never_came_is_said() -> None:
    cell = recovery_cell([Recovery("outage", "healthy", None), Recovery("x", "healthy", 1.0)])
    assert cell == "healthy: 1 of 2 not by the end"


# --- the README ---------------------------------------------------------------------------

README = f"# Project\n\n## Reliability\n\nIntro.\n\n{START}\nold table\n{END}\n\n## Next\n"


def test_the_section_between_the_markers_is_replaced_and_nothing_else() -> None:
    assert replace_section(README, "| new |\n") == (
        f"# Project\n\n## Reliability\n\nIntro.\n\n{START}\n| new |\n{END}\n\n## Next\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "# Project\n\n## Reliability\n",
        f"{START}\n{END}\n{START}\n{END}\n",
        f"{START}\nno end\n",
    ],
    ids=["no markers", "two sections", "no end marker"],
)
def test_a_readme_without_one_pair_of_markers_is_refused(text: str) -> None:
    with pytest.raises(ReadmeError, match=r"needs exactly one .* and one .*Reliability"):
        replace_section(text, "| new |")


def test_markers_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ReadmeError, match="comes before"):
        replace_section(f"{END}\n{START}\n", "| new |")


def test_writing_the_same_table_again_leaves_the_file_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert write_section(readme, "| new |") is True
    assert write_section(readme, "| new |") is False
    with pytest.raises(ReadmeError, match="no such file"):
        write_section(tmp_path / "missing.md", "| new |")


def test_the_projects_readme_has_its_markers() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert replace_section(text, "| x |").count(START) == 1


# --- running and the exit status ----------------------------------------------------------


def test_the_named_scenarios_have_the_named_sizes() -> None:
    by_name = {named.name: load_file(ROOT / named.path) for named in reliability.NAMED}
    storm = {step.label: step for step in by_name["token-storm"].timeline}["storm"]
    assert storm.quotes is not None
    assert storm.quotes.burst == 1000
    (outage,) = by_name["database-outage"].faults
    assert outage.end is not None
    assert outage.end - outage.at == 30
    crowd = {step.label: step for step in by_name["pool-exhaustion"].timeline}["crowd"]
    assert crowd.api is not None
    assert crowd.api.burst == 200
    struck = [e for e in by_name["feed-disconnects"].expect if e.feed_events is not None]
    assert struck[0].feed_events is not None
    assert struck[0].feed_events.kind == "fault"
    assert struck[0].equals == 100
    (lost,) = by_name["lost-order-answers"].faults
    assert isinstance(lost.fault, FaultSpec)
    assert lost.fault.probability == 0.3
    assert any(
        e.broker_requests and e.at_least == 100 for e in by_name["lost-order-answers"].expect
    )
    assert by_name["trading-day"].duration == 6.5 * 3600


def run_main(
    monkeypatch: pytest.MonkeyPatch, rows: list[Row], argv: list[str]
) -> tuple[int, list[str]]:
    ran: list[str] = []

    def run_all(selected: list[reliability.Named], console: object) -> list[Row]:
        ran.extend(named.name for named in selected)
        return rows

    monkeypatch.setattr(reliability, "run_all", run_all)
    return reliability.main(argv), ran


def test_a_clean_report_exits_0_and_writes_both_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    status, ran = run_main(monkeypatch, [a_row()], ["--out", str(tmp_path)])
    assert status == 0
    assert ran == [named.name for named in reliability.NAMED]
    assert '"passed": true' in (tmp_path / "reliability.json").read_text()
    assert "| ✓ 10 of 10 passed | 3.2 |" in (tmp_path / "reliability.md").read_text()


@pytest.mark.parametrize(
    "tally",
    [Tally("orders", 26, 1, 0, 0), Tally("orders", 26, 0, 1, 0), Tally("orders", 26, 0, 0, 1)],
    ids=["lost", "duplicated", "unknown"],
)
def test_anything_lost_duplicated_or_unknown_fails_the_report(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tally: Tally,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _ = run_main(monkeypatch, [a_row(tallies=[tally])], ["--out", str(tmp_path)])
    assert status == 1
    assert "database outage: 1 " in capsys.readouterr().err
    assert '"passed": false' in (tmp_path / "reliability.json").read_text()


def test_a_failed_scenario_fails_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    status, _ = run_main(monkeypatch, [a_row(verdict="FAIL")], ["--out", str(tmp_path)])
    assert status == 1


def test_an_unknown_name_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, ran = run_main(monkeypatch, [], ["--out", str(tmp_path), "token-strom"])
    assert (status, ran) == (2, [])
    assert "no reliability scenario named 'token-strom'; choose from token-storm" in (
        capsys.readouterr().err.replace("\n", " ")
    )


def test_readme_needs_the_whole_list_and_its_markers_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no section\n")
    status, ran = run_main(monkeypatch, [], ["--readme", str(readme), "token-storm"])
    assert (status, ran) == (2, [])
    status, ran = run_main(monkeypatch, [], ["--out", str(tmp_path), "--readme", str(readme)])
    assert (status, ran) == (2, [])
    assert "needs exactly one" in capsys.readouterr().err
    assert readme.read_text() == "# no section\n"


def test_readme_gets_the_table_without_wall_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    status, _ = run_main(monkeypatch, [a_row()], ["--out", str(tmp_path), "--readme", str(readme)])
    assert status == 0
    text = readme.read_text()
    assert "| ✓ 10 of 10 passed |\n" in text
    assert "old table" not in text
    assert text.endswith(f"{END}\n\n## Next\n")


def test_a_failed_report_leaves_the_readme_as_it_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    lost = a_row(tallies=[Tally("orders", 26, 1, 0, 0)])
    status, _ = run_main(monkeypatch, [lost], ["--out", str(tmp_path), "--readme", str(readme)])
    assert status == 1
    assert readme.read_text() == README
    assert "| **1** |" in (tmp_path / "reliability.md").read_text()
