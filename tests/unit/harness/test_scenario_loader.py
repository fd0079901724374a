"""The scenario loader: what loads, and every refusal at the right file:line:column.

Each problem is checked for its exact position (1-based line and column, as editors and CI
annotators read them) and for the parts of its message that tell the writer what to do.
The YAML is inline and short, so a position can be read off the text by eye.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.scenario import Problem, Scenario, ScenarioError, discover, load_file, load_text
from harness.scenario.model import (
    DATABASE_INVARIANTS,
    INVARIANTS,
    TRADING_INVARIANTS,
    FeedFaultSpec,
)

PATH = "scenarios/test.yaml"
ROOT = Path(__file__).resolve().parents[3]


def load(text: str) -> Scenario:
    return load_text(textwrap.dedent(text), PATH)


def problems_of(text: str) -> list[Problem]:
    """The problems ``load_text`` refuses ``text`` with (fails the test if it loads)."""
    with pytest.raises(ScenarioError) as caught:
        load_text(textwrap.dedent(text), PATH)
    assert caught.value.problems, "a ScenarioError must carry at least one problem"
    return caught.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def at(problem: Problem) -> tuple[int, int]:
    return problem.line, problem.column


# --- what loads ----------------------------------------------------------------------------


def test_a_minimal_scenario_loads_with_its_defaults() -> None:
    scenario = load(
        """\
        name: minimal
        duration: 90
        """
    )
    assert scenario.name == "minimal"
    assert scenario.duration == 90
    assert scenario.seed == 0
    assert scenario.clock == "virtual"
    assert scenario.invariants == "all"
    # "all" leaves out the feed's invariant when the feed isn't needed.
    assert scenario.invariant_names == (
        "orders-not-duplicated",
        "unknown-orders-reconciled",
        "secrets-not-printed",
    )
    assert scenario.needs == ["broker"]
    assert scenario.timeline == []
    assert scenario.expect == []
    assert scenario.steady_state is None


def test_load_file_reads_a_scenario_from_disk(tmp_path: Path) -> None:
    file = tmp_path / "quotes.yaml"
    file.write_text("name: from disk\nduration: 30\nseed: 7\n", encoding="utf-8")
    scenario = load_file(file)
    assert (scenario.name, scenario.duration, scenario.seed) == ("from disk", 30, 7)


def test_codes_with_leading_zeros_stay_text() -> None:
    scenario = load(
        """\
        name: codes
        duration: 10
        timeline:
          - at: 0
            quotes: {rate: 1, codes: [005930, 000660, 012330]}
        """
    )
    quotes = scenario.timeline[0].quotes
    assert quotes is not None
    # YAML 1.1 would read 000660 as octal 432 and 012330 as 5336.
    assert quotes.codes == ["005930", "000660", "012330"]


def test_yes_no_on_off_stay_text_and_only_true_false_are_booleans() -> None:
    scenario = load(
        """\
        name: words
        duration: 10
        tags: [on, off, yes, no]
        expect:
          - broker_requests: {faulted: false}
            at_least: 0
        """
    )
    assert scenario.tags == ["on", "off", "yes", "no"]
    selector = scenario.expect[0].broker_requests
    assert selector is not None
    assert selector.faulted is False


def test_a_code_of_the_scenarios_own_error_fault_and_ok_are_valid_expectation_codes() -> None:
    scenario = load(
        """\
        name: custom code
        duration: 100
        timeline:
          - name: custom
            at: 0
            fault: {do: {kind: error, code: ZZZ99999}}
          - name: custom body
            at: 0
            fault: {do: {kind: error, body: {msg_cd: YYY00001}}}
        expect:
          - broker_requests: {code: ZZZ99999}
            at_least: 1
          - broker_requests: {code: YYY00001}
            at_least: 1
          - broker_requests: {code: ok}
            at_least: 1
          - broker_requests: {code: EGW00201}
            equals: 0
        """
    )
    codes = [e.broker_requests.code for e in scenario.expect if e.broker_requests is not None]
    assert codes == ["ZZZ99999", "YYY00001", "ok", "EGW00201"]


def test_a_known_metric_and_a_known_outcome_load() -> None:
    scenario = load(
        """\
        name: known names
        duration: 100
        expect:
          - metric: quotes_served
            at_least: 1
          - system_calls: {outcome: BrokerUnavailable}
            equals: 0
        """
    )
    assert scenario.expect[0].metric == "quotes_served"
    calls = scenario.expect[1].system_calls
    assert calls is not None
    assert calls.outcome == "BrokerUnavailable"


def test_a_steady_state_around_an_action_alone_loads() -> None:
    scenario = load(
        """\
        name: expiry
        duration: 100
        timeline:
          - {name: expire, at: 20, action: expire-tokens}
        steady_state:
          settle: 30
          expect:
            - health: healthy
        """
    )
    assert scenario.steady_state is not None
    assert scenario.steady_state.settle == 30


def test_valid_system_overrides_load() -> None:
    scenario = load(
        """\
        name: naive client
        duration: 100
        system:
          client: {timeout_s: 5, read_retries: 0}
          service: {on_unknown_order: resend}
        """
    )
    assert scenario.system.client == {"timeout_s": 5, "read_retries": 0}
    assert scenario.system.service == {"on_unknown_order": "resend"}


# --- how a problem reads -------------------------------------------------------------------


def test_a_problem_reads_as_path_line_column_message() -> None:
    problem = Problem("a/b.yaml", 3, 7, "seed: oops")
    assert str(problem) == "a/b.yaml:3:7: seed: oops"


def test_a_scenario_error_says_every_problem_one_per_line() -> None:
    error = ScenarioError([Problem("f.yaml", 1, 1, "one"), Problem("f.yaml", 2, 5, "two")])
    assert str(error) == "f.yaml:1:1: one\nf.yaml:2:5: two"
    assert isinstance(error, ValueError)


def test_problems_carry_the_path_they_were_loaded_as() -> None:
    problem = only_problem(
        """\
        name: x
        duration: 10
        bogus: 1
        """
    )
    assert problem.path == PATH


# --- YAML itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "detail"),
    [
        pytest.param(
            "name: x\n  duration: 10\n", (2, 11), "mapping values are not allowed here", id="indent"
        ),
        pytest.param(
            "name: x\nduration: 10\ntimeline:\n\t- at: 0\n",
            (4, 1),
            "found character '\\t' that cannot start any token",
            id="tab",
        ),
        pytest.param(
            "name: x\nduration: 10\ntimeline:\n  - {at: 0, quotes: {rate: 1}\n",
            (5, 1),
            "expected ',' or '}'",
            id="unclosed-flow-mapping",
        ),
    ],
)
def test_a_yaml_syntax_error_is_one_problem_at_its_position(
    text: str, position: tuple[int, int], detail: str
) -> None:
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message.startswith("YAML syntax error: ")
    assert detail in problem.message


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("", "found an empty file", id="empty"),
        pytest.param("# only a comment\n", "found an empty file", id="comment-only"),
        pytest.param("- name: x\n- duration: 10\n", "found a list", id="list"),
        pytest.param("just words\n", "found a str", id="text"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused(text: str, found: str) -> None:
    problem = only_problem(text)
    assert at(problem) == (1, 1)
    assert problem.message.startswith("a scenario is a mapping (name:, duration:, ...)")
    assert problem.message.endswith(found)


# --- unknown keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "where", "key", "valid"),
    [
        pytest.param(
            """\
            name: x
            duration: 10
            durration: 5
            """,
            (3, 1),
            "durration",
            "durration",
            "broker, brokers, clock, duration, expect, feed, invariants, name, needs, seed, "
            "start, steady_state, summary, system, tags, timeline",
            id="top-level",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            timeline:
              - at: 0
                quotes: {rate: 1}
                untill: 5
            """,
            (6, 5),
            "timeline.0.untill",
            "untill",
            "action, api, at, fault, for, load, market, name, orders, quotes, until, watch",
            id="timeline-step",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            expect:
              - token_issuances: true
                at_most: 1
                windw: 5
            """,
            (6, 5),
            "expect.0.windw",
            "windw",
            "after, alerts_received, at_least, at_most, broker_requests, equals, exit_status, "
            "expect, feed_events, from, halts, health, latency, metric, output, per, percentile, "
            "since, success_ratio, system_calls, tick_lag, ticks, token_issuances, until, within",
            id="expectation",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            expect:
              - broker_requests: {cod: EGW00201}
                equals: 0
            """,
            (4, 23),
            "expect.0.broker_requests.cod",
            "cod",
            "code, faulted, kind, method, path, status, tr_id",
            id="broker-requests",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            timeline:
              - at: 0
                fault:
                  match: {path: /uapi/*, methd: GET}
                  do: {kind: reset}
            """,
            (6, 30),
            "timeline.0.fault.match.methd",
            "methd",
            "kind, method, path, tr_id",
            id="fault-match",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            timeline:
              - at: 0
                fault: {do: {kind: hang, seconds: 3}}
            """,
            (5, 30),
            "timeline.0.fault.do.hang.seconds",
            "seconds",
            "kind, max_seconds",
            id="fault-kind",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            system: {clent: {}}
            """,
            (3, 10),
            "system.clent",
            "clent",
            "alerts, client, feed, gateway, service, storage, trading",
            id="system",
        ),
        # realtime: each kind of fault, match and selector has keys of its own
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed]
            timeline:
              - at: 0
                fault:
                  match: {event: frame}
                  do: {kind: reset}
            """,
            (7, 15),
            "timeline.0.fault.match.event",
            "event",
            "kind, method, path, tr_id",
            id="broker-match-with-a-feed-key",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed]
            timeline:
              - at: 0
                fault:
                  target: feed
                  match: {tr_key: '005930', path: /uapi/*}
                  do: {kind: gap}
            """,
            (8, 33),
            "timeline.0.fault.match.path",
            "path",
            "connection, event, tr_id, tr_key",
            id="feed-match-with-a-broker-key",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed]
            timeline:
              - at: 0
                fault:
                  target: feed
                  do: {kind: close, cod: 1011}
            """,
            (8, 25),
            "timeline.0.fault.do.close.cod",
            "cod",
            "all_connections, code, kind, reason",
            id="feed-kind",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed]
            timeline:
              - at: 0
                fault:
                  target: feed
                  do: {kind: gap}
                  frist: 1
            """,
            (9, 7),
            "timeline.0.fault.frist",
            "frist",
            "do, every, first, match, probability, target",
            id="feed-fault",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed]
            feed: {ping_interval: 5}
            """,
            (4, 8),
            "feed.ping_interval",
            "ping_interval",
            "appkey_release_s, max_subscriptions, ping_interval_s, records_per_frame",
            id="mock-feed",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed, gateway]
            timeline:
              - at: 0
                watch: {tickers: ['005930'], client: 2}
            """,
            (6, 34),
            "timeline.0.watch.client",
            "client",
            "clients, slow, tickers",
            id="watch",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            needs: [broker, feed]
            expect:
              - feed_events: {knd: ack}
                equals: 0
            """,
            (5, 19),
            "expect.0.feed_events.knd",
            "knd",
            "code, connection, kind, outcome, tr_id, tr_key",
            id="feed-events",
        ),
        pytest.param(
            """\
            name: x
            duration: 10
            expect:
              - ticks: {sauce: rest}
                equals: 0
            """,
            (4, 13),
            "expect.0.ticks.sauce",
            "sauce",
            "source, stale, ticker, workload",
            id="ticks",
        ),
    ],
)
def test_an_unknown_key_is_named_at_the_key_with_the_valid_keys_there(
    text: str, position: tuple[int, int], where: str, key: str, valid: str
) -> None:
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message == f"{where}: unknown key {key!r}; valid keys here: {valid}"


# --- YAML 1.2 scalars and strict types -----------------------------------------------------


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "1"])
def test_a_boolean_takes_only_true_or_false(word: str) -> None:
    problem = only_problem(
        f"""\
        name: x
        duration: 10
        expect:
          - broker_requests: {{faulted: {word}}}
            equals: 0
        """
    )
    assert at(problem) == (4, 32)
    shown = "1" if word == "1" else repr(word)
    assert problem.message == (
        f"expect.0.broker_requests.faulted: expects true or false, got {shown}"
    )


# --- timeline steps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "got"),
    [
        pytest.param(
            "fault: {do: {kind: reset}}\n    quotes: {rate: 1}", "fault, quotes", id="two"
        ),
        pytest.param("name: nothing", "none", id="none"),
    ],
)
def test_a_step_needs_exactly_one_kind(kinds: str, got: str) -> None:
    problem = only_problem(
        "name: x\nduration: 10\ntimeline:\n  - at: 0\n    " + kinds + "\n",
    )
    assert at(problem) == (4, 5)
    assert problem.message == (
        "timeline.0: a timeline step needs exactly one of fault, action, quotes, orders, watch, "
        f"api, load, market; got {got}"
    )


@pytest.mark.parametrize("until", ["3", "5"])
def test_until_must_be_later_than_at(until: str) -> None:
    problem = only_problem(
        f"""\
        name: x
        duration: 10
        timeline:
          - at: 5
            until: {until}
            quotes: {{rate: 1}}
        """
    )
    assert at(problem) == (4, 5)
    assert problem.message == f"timeline.0: 'until' ({until}) must be later than 'at' (5)"


@pytest.mark.parametrize("start", ["10", "12.5"])
def test_a_step_must_start_before_the_duration(start: str) -> None:
    problem = only_problem(
        f"""\
        name: x
        duration: 10
        timeline:
          - at: 0
            quotes: {{rate: 1}}
          - name: late
            at: {start}
            fault: {{do: {{kind: reset}}}}
        """
    )
    assert at(problem) == (7, 9)
    assert problem.message == (
        f"timeline.1.at: step 'late' starts at {start}s, at or after the scenario's duration (10s)"
    )


def test_a_step_just_before_the_duration_loads() -> None:
    scenario = load(
        """\
        name: x
        duration: 10
        timeline:
          - {at: 9.5, quotes: {burst: 1}}
        """
    )
    assert scenario.timeline[0].at == 9.5


# --- expectations: windows that could never hold anything ----------------------------------


@pytest.mark.parametrize(
    ("window", "position", "message"),
    [
        pytest.param(
            "from: 100",
            (5, 11),
            "expect.0.from: 'from: 100' is at or after the duration (100s)",
            id="from-at-duration",
        ),
        pytest.param(
            "from: 150",
            (5, 11),
            "expect.0.from: 'from: 150' is at or after the duration (100s)",
            id="from-after-duration",
        ),
        pytest.param(
            "until: 101",
            (5, 12),
            "expect.0.until: 'until: 101' is after the duration (100s); leave it out to mean "
            "the end",
            id="until-after-duration",
        ),
        pytest.param(
            "per: 101",
            (5, 10),
            "expect.0.per: 'per: 101' is longer than the scenario (100s)",
            id="per-longer-than-scenario",
        ),
    ],
)
def test_a_window_outside_the_scenario_is_refused_at_its_key(
    window: str, position: tuple[int, int], message: str
) -> None:
    problem = only_problem(
        f"""\
        name: x
        duration: 100
        expect:
          - token_issuances: true
            {window}
            at_most: 1
        """
    )
    assert at(problem) == position
    assert problem.message == message


def test_a_window_reaching_exactly_the_duration_loads() -> None:
    scenario = load(
        """\
        name: x
        duration: 100
        expect:
          - token_issuances: true
            from: 40
            until: 100
            per: 60
            at_most: 1
        """
    )
    assert (scenario.expect[0].until, scenario.expect[0].per) == (100, 60)


def test_after_a_burst_or_a_bounded_step_loads() -> None:
    scenario = load(
        """\
        name: x
        duration: 100
        timeline:
          - {name: burst, at: 0, quotes: {burst: 10}}
          - {name: rate, at: 0, until: 50, quotes: {rate: 1}}
        expect:
          - {system_calls: {}, within: 10, after: burst, at_most: 10}
          - {system_calls: {}, within: 10, after: rate, at_most: 1}
        """
    )
    assert [e.after for e in scenario.expect] == ["burst", "rate"]


# --- steady_state --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expectation", "key", "position"),
    [
        pytest.param("health: healthy\n      from: 5", "from", (10, 13), id="from"),
        pytest.param("health: healthy\n      until: 50", "until", (10, 14), id="until"),
        pytest.param(
            "token_issuances: true\n      per: 60\n      at_most: 1", "per", (10, 12), id="per"
        ),
        pytest.param(
            "health: healthy\n      within: 10\n      after: cut", "within", (10, 15), id="within"
        ),
    ],
)
def test_a_window_key_in_a_steady_state_expectation_is_refused(
    expectation: str, key: str, position: tuple[int, int]
) -> None:
    text = (
        "name: x\nduration: 100\ntimeline:\n"
        "  - {name: cut, at: 10, for: 5, fault: {do: {kind: reset}}}\n"
        "steady_state:\n  settle: 5\n  expect:\n"
        "    - health: healthy\n"
        f"    - {expectation}\n"
    )
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message.startswith(
        f"steady_state.expect.1.{key}: '{key}' has no meaning in a steady state"
    )
    assert "move the expectation to the top-level 'expect'" in problem.message


# --- system: overrides checked against the system's own settings ---------------------------


def test_problems_with_system_overrides_are_sorted_by_line() -> None:
    problems = problems_of(
        """\
        name: x
        duration: 100
        system:
          service: {on_unknown_order: maybe}
          client:
            timeout_s: -1
            appkey: x
        """
    )
    assert [p.message.split(":")[0] for p in problems] == [
        "system.service.on_unknown_order",
        "system.client.timeout_s",
        "system.client.appkey",
    ]
    assert [at(p) for p in problems] == [(4, 13), (6, 5), (7, 5)]


# --- reading files -------------------------------------------------------------------------


def test_load_file_on_a_missing_path_says_no_such_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_file(missing)
    assert caught.value.problems == [Problem(str(missing), 1, 1, "no such file")]


def test_load_file_on_non_utf8_bytes_says_so(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    file.write_bytes("name: x\nsummary: café\nduration: 10\n".encode("latin-1"))
    with pytest.raises(ScenarioError) as caught:
        load_file(file)
    assert caught.value.problems == [
        Problem(str(file), 1, 1, "not UTF-8 text (byte 20); save it as UTF-8")
    ]


def test_load_file_on_a_directory_says_it_cant_read_it(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_file(tmp_path)
    [problem] = caught.value.problems
    assert (problem.path, at(problem)) == (str(tmp_path), (1, 1))
    assert problem.message.startswith("can't read it: ")


def test_load_file_reports_problems_under_the_files_path(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_bytes(b"name: x\r\nduration: 10\r\nbogus: 1\r\n")
    with pytest.raises(ScenarioError) as caught:
        load_file(file)
    [problem] = caught.value.problems
    assert (problem.path, at(problem)) == (str(file), (3, 1))
    assert problem.message.startswith("bogus: unknown key 'bogus'")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "bom.yaml"
    file.write_bytes(b"\xef\xbb\xbfname: x\nduration: 10\n")
    assert load_file(file).name == "x"


# --- several problems ----------------------------------------------------------------------


def test_every_field_problem_of_a_file_is_reported_sorted_by_line_and_column() -> None:
    # Written out of the model's field order, so pydantic's own order would differ.
    problems = problems_of(
        """\
        name: x
        bogus: 1
        timeline:
          - at: 0
            quotes: {codes: [660], rate: "2"}
        expect:
          - broker_requests: {faulted: no}
            equals: 0
        duration: "100"
        """
    )
    assert [(at(p), p.message.split(":")[0]) for p in problems] == [
        ((2, 1), "bogus"),
        ((5, 22), "timeline.0.quotes.codes.0"),
        ((5, 34), "timeline.0.quotes.rate"),
        ((7, 32), "expect.0.broker_requests.faulted"),
        ((9, 11), "duration"),
    ]
    assert all(p.path == PATH for p in problems)


# --- realtime: the feed, the gateway and the watch workload --------------------------------

REALTIME = """\
name: x
duration: 100
needs: [broker, feed, gateway]
"""


def test_a_realtime_scenario_loads_with_its_parts() -> None:
    scenario = load(
        """\
        name: realtime
        duration: 100
        needs: [broker, feed, gateway]
        feed: {ping_interval_s: 5, records_per_frame: 2}
        system:
          feed: {stall_after_s: 10, books: true}
          gateway: {send_buffer_bytes: 16384}
        timeline:
          - name: dashboards
            at: 0
            watch: {clients: 3, tickers: [005930, '000660'], slow: false}
          - name: drop
            at: 30
            fault:
              target: feed
              match: {event: frame, tr_key: '005930', connection: 1}
              first: 1
              do: {kind: close, code: 1011, reason: restart}
        expect:
          - feed_events: {kind: fault, code: '1011'}
            equals: 1
          - ticks: {workload: dashboards, ticker: '005930', source: feed, stale: false}
            per: 10
            at_least: 10
          - tick_lag: {workload: dashboards}
            percentile: 99
            at_most: 0.5
          - metric: feed_reconnects
            equals: 1
          - metric: gateway_messages_dropped
            equals: 0
        invariants: [ticks-match-market]
        """
    )
    assert scenario.needs == ["broker", "feed", "gateway"]
    assert (scenario.feed.ping_interval_s, scenario.feed.records_per_frame) == (5, 2)
    assert scenario.system.feed == {"stall_after_s": 10, "books": True}
    assert scenario.system.gateway == {"send_buffer_bytes": 16384}
    watch = scenario.timeline[0].watch
    assert watch is not None
    assert (watch.clients, watch.tickers, watch.slow) == (3, ["005930", "000660"], False)
    assert scenario.timeline[0].label == "dashboards"
    fault = scenario.timeline[1].fault
    assert isinstance(fault, FeedFaultSpec)
    assert (fault.match.event, fault.match.tr_key, fault.match.connection) == ("frame", "005930", 1)
    assert (fault.do.kind, fault.first) == ("close", 1)
    assert [e.measure for e in scenario.expect] == [
        "feed_events",
        "ticks",
        "tick_lag",
        "metric",
        "metric",
    ]
    assert scenario.invariant_names == ("ticks-match-market",)


def test_all_invariants_include_the_feeds_when_the_feed_is_needed() -> None:
    scenario = load("name: x\nduration: 10\nneeds: [broker, feed]\n")
    assert scenario.invariant_names == tuple(
        name for name in INVARIANTS if name not in (*DATABASE_INVARIANTS, *TRADING_INVARIANTS)
    )
    assert "ticks-match-market" in scenario.invariant_names


def test_all_invariants_include_the_stored_ones_when_the_database_is_needed() -> None:
    scenario = load("name: x\nduration: 10\nclock: real\nneeds: [broker, database]\n")
    assert scenario.invariant_names == (
        "orders-not-duplicated",
        "unknown-orders-reconciled",
        "writes-not-lost",
        "groups-not-half-written",
        "secrets-not-printed",
    )


@pytest.mark.parametrize("clock", ["virtual", "real"])
def test_the_database_runs_on_either_clock(clock: str) -> None:
    # On virtual time every wait on PostgreSQL is held in the realtime guard.
    scenario = load(f"name: x\nduration: 10\nclock: {clock}\nneeds: [broker, database]\n")
    assert scenario.clock == clock
    assert load("name: x\nduration: 10\nneeds: [broker, database]\n").clock == "virtual"


def test_a_database_outage_loads_with_its_window() -> None:
    scenario = load(
        """\
name: x
duration: 60
clock: real
needs: [broker, database]
timeline:
  - name: outage
    at: 10
    for: 30
    fault: {target: database, do: {kind: outage}}
"""
    )
    step = scenario.timeline[0]
    assert step.fault is not None
    assert step.fault.target == "database"
    assert (step.at, step.end) == (10, 40)


def test_a_fault_without_a_target_is_the_brokers() -> None:
    scenario = load(
        """\
        name: x
        duration: 10
        needs: [broker, feed]
        timeline:
          - {at: 0, fault: {do: {kind: reset}}}
        """
    )
    fault = scenario.timeline[0].fault
    assert fault is not None
    assert not isinstance(fault, FeedFaultSpec)
    assert fault.target == "broker"


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "scenarios" / "market").glob("*.yaml")),
        ROOT / "scenarios" / "gateway" / "slow-client.yaml",
    ],
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_the_realtime_scenarios_in_the_repository_load(path: Path) -> None:
    scenario = load_file(path)
    assert {"feed", "gateway"} <= set(scenario.needs)
    assert any(step.watch is not None for step in scenario.timeline)


def test_the_repository_has_the_realtime_scenarios() -> None:
    """Guards the test above: an empty glob would parametrize nothing."""
    found = discover([ROOT / "scenarios" / "market"])
    assert len(found) >= 4


FEED_KINDS = (
    "close",
    "reset",
    "stall",
    "slow-reader",
    "restart",
    "delay",
    "duplicate",
    "reorder",
    "gap",
    "malformed",
    "reject",
)
BROKER_ONLY_KINDS = ("error", "hang", "drop", "empty", "truncated")


def test_an_unknown_feed_fault_kind_names_the_feed_kinds_only() -> None:
    problem = only_problem(
        REALTIME
        + """\
timeline:
  - at: 0
    fault:
      target: feed
      do: {kind: hang}
"""
    )
    assert at(problem) == (8, 7)
    assert problem.message.startswith("timeline.0.fault.do: Input tag 'hang' ")
    listed = problem.message.split("expected tags: ")[1]
    assert listed == ", ".join(f"'{kind}'" for kind in FEED_KINDS)
    for kind in BROKER_ONLY_KINDS:
        assert f"'{kind}'" not in listed


@pytest.mark.parametrize("target", ["proxy", "5", "Feed"])
def test_an_unknown_target_says_which_targets_there_are(target: str) -> None:
    problem = only_problem(
        f"""\
        name: x
        duration: 10
        timeline:
          - at: 0
            fault:
              target: {target}
              do: {{kind: reset}}
        """
    )
    assert at(problem) == (5, 5)
    assert problem.message == (
        "timeline.0.fault: 'target' must be broker, feed, database, alerts or redis"
    )


@pytest.mark.parametrize("measure", ["ticks", "tick_lag"])
def test_a_ticks_workload_must_name_a_watch_step(measure: str) -> None:
    problem = only_problem(
        REALTIME
        + f"""\
timeline:
  - {{name: dashboards, at: 0, watch: {{tickers: ['005930']}}}}
  - {{name: quotes, at: 0, quotes: {{rate: 1}}}}
  - {{name: tabs, at: 0, watch: {{tickers: ['000660']}}}}
expect:
  - {measure}: {{workload: nope}}
    at_most: 1
"""
    )
    assert at(problem) == (9, 18 + len(measure))
    assert problem.message == (
        f"expect.0.{measure}.workload: 'workload: nope' names no watch step; "
        "the watch steps are: dashboards, tabs"
    )


@pytest.mark.parametrize(
    ("selector", "position", "message"),
    [
        pytest.param(
            "feed_events: {kind: acks}",
            (5, 25),
            "expect.0.feed_events.kind: Input should be 'connect', 'disconnect', 'message', "
            "'ack', 'frame', 'pingpong' or 'fault'",
            id="feed-events-kind",
        ),
        pytest.param(
            "ticks: {source: websocket}",
            (5, 21),
            "expect.0.ticks.source: Input should be 'feed' or 'rest'",
            id="ticks-source",
        ),
    ],
)
def test_an_unknown_choice_in_a_realtime_selector_lists_the_choices(
    selector: str, position: tuple[int, int], message: str
) -> None:
    problem = only_problem(
        f"name: x\nduration: 100\nneeds: [broker, feed]\nexpect:\n  - {selector}\n    equals: 0\n"
    )
    assert at(problem) == position
    assert problem.message == message


def test_percentile_applies_to_tick_lag_but_not_to_ticks() -> None:
    scenario = load(
        REALTIME
        + """\
timeline:
  - {name: d, at: 0, watch: {tickers: ['005930']}}
expect:
  - {tick_lag: {workload: d}, percentile: 99, at_most: 1}
"""
    )
    assert scenario.expect[0].percentile == 99
    problem = only_problem(
        REALTIME
        + """\
timeline:
  - {name: d, at: 0, watch: {tickers: ['005930']}}
expect:
  - ticks: {workload: d}
    percentile: 99
    at_least: 1
"""
    )
    assert at(problem) == (7, 5)
    assert problem.message == "expect.0: 'percentile' applies to latency and tick_lag only"


@pytest.mark.parametrize(
    ("setting", "position", "where", "detail"),
    [
        pytest.param(
            "feed: {backoff_base_s: 5, backoff_max_s: 1}",
            (5, 3),
            "system.feed",
            "backoff_max_s (1.0) must not be below backoff_base_s (5.0)",
            id="feed-backoff",
        ),
        pytest.param(
            "gateway: {heartbeat_interval_s: 30, pong_timeout_s: 20}",
            (5, 39),
            "system.gateway.pong_timeout_s",
            "must exceed heartbeat_interval_s (30.0)",
            id="gateway-pong-timeout",
        ),
        pytest.param(
            "gateway: {send_buffer_bytes: 1024}",
            (5, 13),
            "system.gateway.send_buffer_bytes",
            "greater than or equal to 4096",
            id="gateway-send-buffer",
        ),
    ],
)
def test_a_bad_feed_or_gateway_setting_value_is_refused(
    setting: str, position: tuple[int, int], where: str, detail: str
) -> None:
    problem = only_problem(
        f"name: x\nduration: 100\nneeds: [broker, feed, gateway]\nsystem:\n  {setting}\n"
    )
    assert at(problem) == position
    assert problem.message.startswith(f"{where}: ")
    assert detail in problem.message


# --- refusals, one table each: a YAML text and the one problem it is refused with ----------
# Rows are grouped by the sections above; the id of a row says what it shows.

STEPS = """\
name: x
duration: 100
timeline:
  - name: q
    at: 0
    quotes: {rate: 1}
  - name: cut
    at: 5
    for: 5
    fault: {do: {kind: reset}}
expect:
"""

REFUSED = [
    # YAML 1.2 scalars and strict types
    pytest.param(
        "name: x\n",
        (1, 1),
        "duration: required key 'duration' is missing",
        id="a-required-key-missing-is-named",
    ),
    # timeline steps
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - at: 0
            fault:
              do: {code: EGW00201}
        """,
        (6, 7),
        "timeline.0.fault.do: needs a 'kind': one of error, delay, hang, drop, reset, close, "
        "empty, malformed, truncated",
        id="a-fault-without-a-kind-lists-the-kinds",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - name: q
            at: 0
            quotes: {rate: 1}
          - name: q
            at: 1
            quotes: {burst: 3}
        """,
        (4, 11),
        "timeline.0.name: timeline step names must be unique; 'q' is repeated",
        id="step-names-must-be-unique",
    ),
    # expectations: names they refer to
    pytest.param(
        STEPS + "  - health: healthy\n    within: 10\n    after: outage\n",
        (14, 12),
        "expect.0.after: 'after: outage' names no timeline step; the steps are: q, cut",
        id="after-must-name-a-step-and-the-message-lists-the-steps",
    ),
    pytest.param(
        STEPS + "  - success_ratio: {workload: cut}\n    equals: 1\n",
        (12, 31),
        "expect.0.success_ratio.workload: 'workload: cut' names no workload step; "
        "the workloads are: q",
        id="workload-must-name-a-workload-step",
    ),
    # expectations: windows that could never hold anything
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - name: q
            at: 0
            quotes: {rate: 1}
        expect:
          - system_calls: {}
            within: 10
            after: q
            at_most: 1
        """,
        (10, 12),
        "expect.0.after: step 'q' is only over when the scenario ends, so nothing comes after "
        "it; give the step an 'until' or 'for'",
        id="after-a-step-that-lasts-to-the-end-is-refused",
    ),
    # steady_state
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - name: cut
            at: 10
            for: 50
            fault: {do: {kind: reset}}
        steady_state:
          settle: 40
          expect:
            - health: healthy
        """,
        (9, 11),
        "steady_state.settle: the steady state has no 'after' window: the last fault or "
        "action is over at 60s, and settle (40s) reaches the duration (100s); lengthen "
        "'duration' or shorten 'settle'",
        id="a-settle-that-reaches-the-duration-leaves-no-after-window",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - {name: q, at: 0, quotes: {rate: 1}}
        steady_state:
          expect:
            - health: healthy
        """,
        (5, 1),
        "steady_state: 'steady_state' needs at least one fault or action to be before and after",
        id="a-steady-state-needs-a-fault-or-an-action",
    ),
    # system: overrides checked against the system's own settings
    pytest.param(
        """\
        name: x
        duration: 100
        system:
          client: {appkey: x}
        """,
        (4, 12),
        "system.client.appkey: 'appkey' is set by the stack, not by scenarios",
        id="a-connection-setting-is-refused-as-set-by-the-stack",
    ),
    # realtime: the feed, the gateway and the watch workload
    pytest.param(
        """\
        name: x
        duration: 100
        needs: [broker, feed]
        timeline:
          - name: dashboards
            at: 0
            watch: {tickers: ['005930']}
        """,
        (7, 5),
        "timeline.0.watch: step 'dashboards' watches the gateway's /ws; add gateway to 'needs'",
        id="a-watch-step-without-the-gateway-is-refused-at-its-watch",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        needs: [broker, gateway]
        """,
        (3, 1),
        "needs: the gateway's prices come from the feed; add feed",
        id="the-gateway-without-the-feed-is-refused-at-needs",
    ),
    pytest.param(
        "name: x\nduration: 100\nneeds: [feed]\n",
        (3, 1),
        "needs: the system always needs the broker; add broker",
        id="needs-without-the-broker-is-refused",
    ),
    pytest.param(
        "name: x\nduration: 100\nneeds: [broker, proxy]\n",
        (3, 17),
        "needs.1: Input should be 'broker', 'feed', 'gateway', 'database', 'trading', "
        "'alerts' or 'redis'",
        id="an-unknown-part-lists-the-parts",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - name: losses
            at: 0
            fault: {target: feed, do: {kind: gap}}
        """,
        (6, 21),
        "timeline.0.fault.target: step 'losses' targets 'feed', which 'needs' lacks",
        id="a-feed-fault-without-the-feed-in-needs-is-refused-at-its-target",
    ),
    pytest.param(
        REALTIME
        + """\
timeline:
  - at: 0
    fault:
      target: feed
      do: {seconds: 3}
""",
        (8, 7),
        f"timeline.0.fault.do: needs a 'kind': one of {', '.join(FEED_KINDS)}",
        id="a-feed-fault-without-a-kind-lists-the-feed-kinds",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        needs: [broker, feed]
        timeline:
          - at: 0
            fault: {do: {kind: gap}}
        """,
        (6, 13),
        "timeline.0.fault.do: Input tag 'gap' found using 'kind' does not match any of the "
        "expected tags: 'error', 'delay', 'hang', 'drop', 'reset', 'close', 'empty', "
        "'malformed', 'truncated'",
        id="a-broker-fault-with-a-feed-kind-names-the-broker-kinds-only",
    ),
    pytest.param(
        REALTIME
        + """\
timeline:
  - {name: quotes, at: 0, quotes: {rate: 1}}
expect:
  - ticks: {workload: quotes}
    at_least: 1
""",
        (7, 23),
        "expect.0.ticks.workload: 'workload: quotes' names no watch step; the watch steps are: "
        "none",
        id="a-ticks-workload-naming-a-quotes-step-is-refused-too",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        expect:
          - feed_events: {kind: connect}
            at_least: 1
        """,
        (4, 5),
        "expect.0.feed_events: feed_events needs the feed; add feed to 'needs'",
        id="feed-events-without-the-feed-are-refused",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        expect:
          - halts: {}
            equals: 0
        """,
        (4, 5),
        "expect.0.halts: halts needs the trading desk; add trading to 'needs'",
        id="halts-without-the-desk-are-refused",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        needs: [broker, feed, trading]
        expect:
          - halts: {reason: daily-loss}
            equals: 1
        """,
        (5, 21),
        "expect.0.halts.reason: unknown halt reason 'daily-loss'; valid ones: "
        "daily-loss-limit, cumulative-loss-limit, consecutive-failures, source-latency, manual",
        id="a-halt-reason-that-does-not-exist-is-refused-with-the-valid-ones",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - {name: cut, at: 10, for: 5, fault: {do: {kind: reset}}}
        steady_state:
          settle: 5
          expect:
            - feed_events: {kind: connect}
              equals: 1
        """,
        (8, 7),
        "steady_state.expect.0.feed_events: feed_events needs the feed; add feed to 'needs'",
        id="feed-events-without-the-feed-in-the-steady-state-are-refused-there",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        invariants: [orders-not-duplicated, ticks-match-market]
        """,
        (3, 37),
        "invariants.1: 'ticks-match-market' checks the feed; add feed to 'needs'",
        id="the-feeds-invariant-without-the-feed-is-refused-at-the-item",
    ),
    pytest.param(
        REALTIME
        + """\
timeline:
  - at: 0
    watch: {tickers: [5930]}
""",
        (6, 23),
        "timeline.0.watch.tickers.0: Input should be a valid string (got the number 5930; put "
        "quotes around values that must stay text, e.g. codes: ['005930'])",
        id="a-ticker-without-quotes-is-asked-to-be-quoted",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        needs: [broker, feed]
        system:
          feed: {url: 'ws://example.com/tryitout', stall_after_s: 10}
        """,
        (5, 10),
        "system.feed.url: 'url' is set by the stack, not by scenarios",
        id="a-feed-url-is-refused-as-set-by-the-stack",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        needs: [broker, feed]
        system:
          feed: {stall_after: 10}
        """,
        (5, 10),
        "system.feed.stall_after: unknown setting; valid ones: backoff_base_s, backoff_max_s, "
        "books, connect_timeout_s, custtype, max_subscriptions, resync_on_reconnect, "
        "stall_after_s",
        id="an-unknown-feed-setting-lists-the-valid-ones-without-the-url",
    ),
]


@pytest.mark.parametrize(("text", "position", "message"), REFUSED)
def test_a_refusal_is_one_problem_at_its_position_with_its_message(
    text: str, position: tuple[int, int], message: str
) -> None:
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message == message


# The message starts with ``start`` and holds every one of ``parts`` and none of ``absent``.
REFUSED_IN_PART = [
    # YAML itself
    pytest.param(
        """\
        name: first
        duration: 10
        name: second
        """,
        (3, 1),
        "",
        ("key 'name' appears twice in this mapping (first on line 1); remove one",),
        (),
        id="a-duplicate-top-level-key-is-reported-at-its-second-occurrence",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - at: 0
            quotes: {rate: 1}
            at: 2
        """,
        (6, 5),
        "",
        ("key 'at' appears twice in this mapping (first on line 4)",),
        (),
        id="a-duplicate-key-inside-a-timeline-step-is-reported-where-it-repeats",
    ),
    # YAML 1.2 scalars and strict types
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - at: 0
            quotes: {rate: 1, codes: ['005930', 660]}
        """,
        (5, 41),
        "timeline.0.quotes.codes.1: ",
        ("got the number 660; put quotes around values that must stay text",),
        (),
        id="a-code-without-leading-zeros-is-a-number-and-is-asked-to-be-quoted",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - at: 0
            quotes: {rate: "1"}
        """,
        (5, 20),
        "timeline.0.quotes.rate: Input should be a valid number",
        ("got the text '1'; write numbers without quotes",),
        (),
        id="a-quoted-number-is-refused-with-advice-to-drop-the-quotes",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        seed: 007
        """,
        (3, 7),
        "seed: ",
        ("'007'",),
        ("without quotes",),
        id="an-unquoted-number-with-leading-zeros-is-not-told-to-drop-quotes",
    ),
    # timeline steps
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - at: 0
            fault:
              do: {kind: timeout, seconds: 3}
        """,
        (6, 7),
        "timeline.0.fault.do: ",
        ("'timeout'", "'error'", "'delay'", "'hang'", "'drop'", "'truncated'"),
        (),
        id="an-unknown-fault-kind-names-the-valid-ones",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        timeline:
          - at: 0
            quotes: {rate: 1}
          - at: 0
            quotes: {burst: 3}
        """,
        (4, 5),
        "",
        ("'quotes@0s' is repeated",),
        (),
        id="unnamed-steps-of-one-kind-at-one-second-collide-on-their-generated-name",
    ),
    # expectations: names they refer to
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - {name: cut, at: 10, for: 5, fault: {do: {kind: error, code: ZZZ1}}}
        steady_state:
          settle: 5
          expect:
            - broker_requests: {code: ZZZ2}
              equals: 0
        """,
        (8, 31),
        "steady_state.expect.0.broker_requests.code: unknown answer code 'ZZZ2'",
        ("ZZZ1",),
        (),
        id="an-unknown-answer-code-in-the-steady-state-is-reported-there",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        expect:
          - system_calls: {outcome: timed-out}
            equals: 0
        """,
        (4, 29),
        "expect.0.system_calls.outcome: unknown outcome 'timed-out'; "
        "valid ones: ok, refused, failed, unfinished, ",
        ("BrokerUnavailable", "TokenCooldown"),
        (),
        id="an-unknown-outcome-lists-the-valid-ones",
    ),
    # steady_state
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - {name: cut, at: 10, for: 30, fault: {do: {kind: reset}}}
        steady_state:
          expect:
            - health: healthy
        """,
        (5, 1),
        "",
        ("no 'after' window", "settle (60s)"),
        (),
        id="the-default-settle-counts-too",
    ),
    pytest.param(
        """\
        name: x
        duration: 100
        timeline:
          - {name: cut, at: 10, fault: {do: {kind: reset}}}
        steady_state:
          settle: 0
          expect:
            - health: healthy
        """,
        (6, 11),
        "",
        ("over at 100s",),
        (),
        id="a-fault-to-the-end-leaves-the-steady-state-no-after-window",
    ),
    # system: overrides checked against the system's own settings
    pytest.param(
        """\
        name: x
        duration: 100
        system:
          service: {on_unknown_order: maybe}
        """,
        (4, 13),
        "system.service.on_unknown_order: ",
        ("'reconcile' or 'resend'",),
        (),
        id="a-bad-service-setting-value-is-refused",
    ),
    # positions the loader gets wrong
    pytest.param(
        """\
        name: x
        duration: 10
        invariants: [orders-not-duplicate]
        """,
        (3, 14),
        "",
        ("orders-not-duplicated",),
        ("literal[",),
        id="a-misspelt-invariant-is-one-problem-at-the-item",
    ),
    pytest.param(
        """\
        name: x
        duration: 10
        5: five
        """,
        (3, 1),
        "5: ",
        (),
        (),
        id="a-key-that-is-not-text-is-reported-at-its-own-line",
    ),
    # realtime: the feed, the gateway and the watch workload
    pytest.param(
        """\
        name: x
        duration: 100
        needs: [broker, feed]
        expect:
          - feed_events: {kind: disconnect, code: 1011}
            equals: 0
        """,
        (5, 43),
        "expect.0.feed_events.code: Input should be a valid string",
        ("got the number 1011; put quotes around values",),
        (),
        id="a-close-code-in-feed-events-is-asked-to-be-quoted",
    ),
    # the database and the gateway's HTTP API
    pytest.param(
        "name: x\nduration: 10\nsystem:\n  storage: {buffer_capacity: 5}\n",
        (4, 3),
        "",
        ("storage settings need the database; add database",),
        (),
        id="storage-settings-need-the-database",
    ),
    pytest.param(
        "name: x\nduration: 10\ninvariants: [writes-not-lost]\n",
        (3, 14),
        "",
        ("'writes-not-lost' checks what the system stored",),
        (),
        id="a-stored-invariant-needs-the-database",
    ),
    pytest.param(
        "name: x\nduration: 10\ntimeline:\n  - {at: 1, api: {burst: 3}}\n",
        (4, 13),
        "",
        ("calls the gateway's HTTP API; add gateway to 'needs'",),
        (),
        id="an-api-step-needs-the-gateway",
    ),
    pytest.param(
        "name: x\nduration: 10\ntimeline:\n  - at: 1\n    fault:\n      match: {kind: ordr}\n"
        "      do: {kind: drop}\n",
        (6, 21),
        "timeline.0.fault.match.kind: ",
        ("'quote', 'order'",),
        ("valid list",),
        id="a-misspelt-request-kind-is-one-problem",
    ),
    pytest.param(
        "name: x\nduration: 10\ntimeline:\n  - at: 1\n    fault:\n"
        "      match: {kind: [quote, ordr]}\n      do: {kind: drop}\n",
        (6, 29),
        "timeline.0.fault.match.kind.1: ",
        ("'quote', 'order'",),
        (),
        id="a-misspelt-request-kind-in-a-list-is-one-problem-at-the-item",
    ),
]


@pytest.mark.parametrize(("text", "position", "start", "parts", "absent"), REFUSED_IN_PART)
def test_a_refusal_is_one_problem_at_its_position_saying_what_matters(
    text: str,
    position: tuple[int, int],
    start: str,
    parts: tuple[str, ...],
    absent: tuple[str, ...],
) -> None:
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message.startswith(start)
    for part in parts:
        assert part in problem.message
    for part in absent:
        assert part not in problem.message


@pytest.mark.parametrize(
    ("text", "position", "start", "listed", "unlisted", "ordered"),
    [
        pytest.param(
            """\
            name: x
            duration: 100
            expect:
              - broker_requests: {code: EGW0201}
                equals: 0
            """,
            (4, 29),
            (
                "expect.0.broker_requests.code: unknown answer code 'EGW0201': neither the broker "
                "nor this scenario's faults answer with it; valid ones: "
            ),
            {"EGW00201", "EGW00123", "EGW00133", "ok"},
            set(),
            False,
            id="an-unknown-answer-code-is-reported-at-the-code",
        ),
        pytest.param(
            """\
            name: x
            duration: 100
            expect:
              - metric: quotes_servd
                equals: 0
            """,
            (4, 13),
            "expect.0.metric: unknown metric 'quotes_servd'; the system reports: ",
            {"quotes_served", "orders_reconciled_present", "health_state"},
            set(),
            False,
            id="an-unknown-metric-lists-the-metrics",
        ),
        pytest.param(
            """\
            name: x
            duration: 100
            system:
              client: {nonsense: 1}
            """,
            (4, 12),
            "system.client.nonsense: unknown setting; valid ones: ",
            {"timeout_s", "token_cooldown_s", "read_retries"},
            {"appkey", "appsecret", "base_url", "account", "profile"},
            False,
            id="an-unknown-client-setting-lists-the-valid-ones-without-the-stacks",
        ),
        pytest.param(
            """\
            name: x
            duration: 100
            needs: [broker, feed, gateway]
            system:
              gateway: {bogus: 1}
            """,
            (5, 13),
            "system.gateway.bogus: unknown setting; valid ones: ",
            {
                "heartbeat_interval_s",
                "pong_timeout_s",
                "client_queue_size",
                "send_buffer_bytes",
                "rest_fallback_interval_s",
            },
            set(),
            True,
            id="an-unknown-gateway-setting-lists-the-valid-ones",
        ),
    ],
)
def test_a_refusal_lists_the_valid_choices_after_its_start(
    text: str,
    position: tuple[int, int],
    start: str,
    listed: set[str],
    unlisted: set[str],
    ordered: bool,
) -> None:
    """The choices follow ``start``, comma-separated: ``listed`` among them, ``unlisted``
    not, and in sorted order when ``ordered``."""
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message.startswith(start)
    choices = problem.message.removeprefix(start).split(", ")
    assert listed <= set(choices)
    assert not unlisted & set(choices)
    if ordered:
        assert choices == sorted(choices)


@pytest.mark.parametrize(
    ("do", "match", "says"),
    [
        ("{kind: outage}", "{direction: upstream}", "leave 'match' out"),
        ("{kind: outage}", "{connection: 2}", "leave 'match' out"),
        ("{kind: cut}", "{direction: downstream}", "leave 'match.direction' out"),
        ("{kind: refuse}", "{direction: upstream}", "leave 'match.direction' out"),
        ("{kind: reset}", "{direction: upstream}", "leave 'match.direction' out"),
    ],
)
def test_a_whole_connection_fault_refuses_a_direction(do: str, match: str, says: str) -> None:
    problem = only_problem(
        "name: x\nduration: 60\nclock: real\nneeds: [broker, database]\ntimeline:\n"
        f"  - {{at: 1, fault: {{target: database, match: {match}, do: {do}}}}}\n"
    )
    assert says in problem.message


# --- start-up scenarios ------------------------------------------------------------------

START = "name: x\nduration: 10\nclock: real\n"
FEED_TAKEN = "start: {command: mock feed, taken: --port}\n"


def test_a_start_up_loads_and_checks_only_its_printed_secrets() -> None:
    scenario = load(
        START
        + "needs: [broker, database]\n"
        + "start: {command: system, database: wrong-password}\n"
        + "system: {storage: {pool: {connect_timeout_s: 3}}}\n"
        + "expect:\n  - {exit_status: 2}\n  - {output: 'port {port}', at_least: 1}\n"
    )
    assert scenario.start is not None
    assert scenario.start.label == "squall system (database wrong-password)"
    assert [e.measure for e in scenario.expect] == ["exit_status", "output"]
    assert scenario.invariant_names == ("secrets-not-printed",)
    # ... and a timeline scenario checks it too, over its logs, journals and results.
    assert "secrets-not-printed" in load(START).invariant_names
    assert load(START + "invariants: [secrets-not-printed]\n").invariant_names == (
        "secrets-not-printed",
    )


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        pytest.param(
            START + FEED_TAKEN + "timeline:\n  - {at: 1, quotes: {burst: 1}}\n",
            (5, 1),
            "timeline: a start-up scenario has no 'timeline': it starts one command",
            id="a-start-up-has-no-timeline",
        ),
        pytest.param(
            START + "start: {command: system}\n",
            (4, 1),
            "start: a start-up needs exactly one condition: 'taken' (a port option) or 'database'",
            id="a-start-up-needs-one-condition",
        ),
        pytest.param(
            START + "start: {command: mock broker, taken: --listen}\n",
            (4, 38),
            "start.taken: 'mock broker' has no --listen option; its ports are picked by --port",
            id="a-taken-option-must-be-the-commands",
        ),
        pytest.param(
            START
            + "needs: [broker, database]\nstart: {command: mock feed, database: wrong-password}\n",
            (5, 39),
            "start.database: only the system uses a database; use 'system'",
            id="only-the-system-has-a-database",
        ),
        pytest.param(
            START + "expect:\n  - {exit_status: 2}\n",
            (5, 19),
            "expect.0.exit_status: 'exit_status' judges a start-up; add 'start'",
            id="exit-status-needs-a-start-up",
        ),
        pytest.param(
            START + FEED_TAKEN + "expect:\n  - {health: healthy}\n",
            (6, 14),
            "expect.0.health: a start-up scenario is judged by exit_status and output; "
            "'health' needs a timeline",
            id="a-start-up-is-judged-by-its-own-measures",
        ),
        pytest.param(
            "name: x\nduration: 10\n" + FEED_TAKEN,
            (1, 1),  # no 'clock' key to point at
            "clock: a start-up runs a process of its own, on real time; set 'clock: real'",
            id="a-start-up-runs-on-real-time",
        ),
        pytest.param(
            START + FEED_TAKEN + "expect:\n  - {exit_status: 2, equals: 2}\n",
            (6, 5),
            "expect.0: an exit_status expectation takes no bound: it names the status",
            id="exit-status-takes-no-bound",
        ),
        pytest.param(
            START + FEED_TAKEN + "expect:\n  - {output: x, equals: 0, from: 1}\n",
            (6, 5),
            "expect.0: 'output' takes no window: a start-up is judged on its whole run",
            id="output-takes-no-window",
        ),
        pytest.param(
            START + FEED_TAKEN + "invariants: [orders-not-duplicated]\n",
            (5, 14),
            "invariants.0: 'orders-not-duplicated' needs a timeline; a start-up scenario "
            "checks secrets-not-printed",
            id="a-timeline-invariant-in-a-start-up",
        ),
        pytest.param(
            START + "start: {command: system, taken: --port}\nsystem:\n  client: {timeout_s: 1}\n",
            (6, 3),
            "system.client: a start-up takes only 'system.storage' overrides",
            id="a-start-up-takes-only-storage-settings",
        ),
        pytest.param(
            START + "start: {command: system, database: not-answering}\n",
            (4, 36),
            "start.database: a database problem needs database in 'needs'",
            id="a-database-problem-needs-the-database",
        ),
    ],
)
def test_a_start_up_scenario_is_refused_where_it_goes_wrong(
    text: str, position: tuple[int, int], message: str
) -> None:
    problem = only_problem(text)
    assert at(problem) == position
    assert problem.message.startswith(message)


# --- market events and desk actions ---------------------------------------------------------


def test_market_steps_load_with_their_windows() -> None:
    scenario = load(
        "name: x\nduration: 600\ntimeline:\n"
        "  - {name: crash, at: 120, market: {kind: gap, code: '005930', pct: -8}}\n"
        "  - {name: vi, at: 300, market: {kind: vi, code: '000660'}}\n"
        "  - {name: pinned, at: 400, for: 60, market: {kind: limit-down, code: '000660'}}\n"
    )
    gap, vi, pinned = scenario.market_moves
    assert (gap.over_at(600), vi.over_at(600), pinned.over_at(600)) == (120, 420, 460)
    assert [step.label for step in scenario.disruptions] == ["crash", "vi", "pinned"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        pytest.param(
            "{at: 10, market: {kind: gap, code: '005930'}}",
            "a gap needs 'pct': the jump in percent, e.g. -8 (not 0)",
            id="a-gap-needs-pct",
        ),
        pytest.param(
            "{at: 10, market: {kind: vi, code: '005930', pct: 3}}",
            "'vi' takes no 'pct'; only a gap or a mispricing moves by a percentage",
            id="only-a-gap-takes-pct",
        ),
        pytest.param(
            "{at: 10.5, market: {kind: vi, code: '005930'}}",
            "a market event starts and ends on whole seconds",
            id="market-events-on-whole-seconds",
        ),
        pytest.param(
            "{at: 10, for: 5, market: {kind: gap, code: '005930', pct: 2}}",
            "a gap happens at 'at' and stays; it takes no 'until' or 'for'",
            id="a-gap-has-no-end",
        ),
        pytest.param(
            "{name: press, at: 10, action: press-kill-switch}",
            "step 'press' acts on the trading desk; add trading to 'needs'",
            id="the-kill-switch-needs-the-desk",
        ),
    ],
)
def test_a_bad_market_step_or_desk_action_is_refused(step: str, message: str) -> None:
    problem = only_problem(f"name: x\nduration: 60\ntimeline:\n  - {step}\n")
    assert message in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Found by tests/fuzz: a key with a bracket read as one of pydantic's union tags.
        ("name: x\nduration: 5\n'0[': 1\n", "f.yaml:3:1: 0[: unknown key '0['"),
        ("name: x\nduration: 5\n'list[a]': 1\n", "f.yaml:3:1: list[a]: unknown key 'list[a]'"),
        # A list as a key (a TypeError once), and infinite times (an OverflowError once).
        ("name: x\nduration: 5\n[a, b]: 1\n", "f.yaml:3:1: YAML syntax error: a key must be"),
        ("name: x\nduration: .inf\n", "f.yaml:2:11: duration: Input should be a finite number"),
        (
            "name: x\nduration: 5\ntimeline:\n"
            "  - {at: .inf, market: {kind: gap, code: '005930'}}\n",
            "f.yaml:4:10: timeline.0.at: Input should be a finite number",
        ),
        # ... and a fault that is not a mapping at all.
        (
            "name: x\nduration: 5\ntimeline:\n  - {at: 1, fault: 5}\n",
            "f.yaml:4:20: timeline.0.fault: a fault is a mapping such as "
            "{target: broker, do: {kind: error}} (target defaults to broker), not int 5",
        ),
    ],
)
def test_odd_keys_and_values_found_by_fuzzing_get_a_position_and_a_message(
    text: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as raised:
        load_text(text, "f.yaml")
    assert message in str(raised.value)
