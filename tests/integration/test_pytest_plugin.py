"""The pytest plugin, driven the way users drive it: pytest runs on small projects of their own.

Each test writes scenario files (and hand-written tests) into a fresh directory and runs
pytest on it in a subprocess, where the plugin loads through its entry point, exactly as in
a user's checkout. A subprocess also keeps each inner run's event loops out of this one's.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from textwrap import dedent

import pytest

pytest_plugins = ["pytester"]

TINY = """\
name: tiny
tags: [tokens]
duration: 5
timeline:
  - {name: q, at: 0, quotes: {rate: 1}}
expect:
  - {success_ratio: {workload: q}, equals: 1}
"""

# One token request in 5 s, never 99: the check fails and reports what it saw.
TOO_MANY_TOKENS = """\
name: too many tokens
tags: [broker]
duration: 5
timeline:
  - {name: q, at: 0, quotes: {rate: 1}}
expect:
  - {broker_requests: {path: /oauth2/tokenP}, equals: 99}
"""

UNKNOWN_KEY = """\
name: broken
duration: 5
timeline:
  - name: q
    at: 0
    quotes: {rate: 1}
    bogus: 2
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """An empty project whose async tests run on pytest-asyncio's auto mode, as Squall's do."""
    pytester.makeini(
        """
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        """
    )
    pytester.mkdir("scenarios")
    return pytester


def write(project: pytest.Pytester, relative: str, text: str) -> None:
    path = project.path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def collected(result: pytest.RunResult) -> list[str]:
    """The node ids ``--collect-only -q`` listed."""
    return [line for line in result.outlines if "::" in line]


def test_a_passing_scenario_is_one_item_named_after_the_scenario(project: pytest.Pytester) -> None:
    write(project, "scenarios/tiny.yaml", TINY)
    result = project.runpytest_subprocess("-v", "scenarios")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["scenarios/tiny.yaml::tiny PASSED*"])


def test_a_scenario_for_two_brokers_is_an_item_per_broker(project: pytest.Pytester) -> None:
    both = TINY.replace("name: tiny", "name: tiny\nbrokers: [kis, kiwoom]").replace(
        "expect:", "expect:\n  - {token_issuances: true, equals: 1}"
    )
    write(project, "scenarios/tiny.yaml", both)
    result = project.runpytest_subprocess("-v", "scenarios")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "scenarios/tiny.yaml::tiny[[]kis[]] PASSED*",
            "scenarios/tiny.yaml::tiny[[]kiwoom[]] PASSED*",
        ]
    )


def test_a_failing_scenario_shows_its_checks_and_no_traceback(project: pytest.Pytester) -> None:
    write(project, "scenarios/tokens.yaml", TOO_MANY_TOKENS)
    result = project.runpytest_subprocess("scenarios", "--squall-seed", "42")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scenario: too many tokens*",
            "scenario 'too many tokens': 1 of * checks failed",
            "  seed     42",
            "  clock    virtual",
            "  time     5.0 s simulated in * s wall",
            "  journal  sha256:*",
            "✗ broker requests*/oauth2/tokenP*99",
            "    observed: 1 *",
            "reproduce: pytest 'scenarios/tokens.yaml::too many tokens' --squall-seed 42 *",
        ]
    )
    output = result.stdout.str()
    assert "Traceback" not in output
    assert not [line for line in result.outlines if line.startswith("E   ")], output


def test_an_invalid_file_fails_at_its_line_and_column_without_stopping_the_others(
    project: pytest.Pytester,
) -> None:
    write(project, "scenarios/broken.yaml", UNKNOWN_KEY)
    write(project, "scenarios/syntax.yml", "name: [unclosed\nduration: 5\n")
    write(project, "scenarios/tiny.yaml", TINY)
    result = project.runpytest_subprocess("scenarios")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["scenarios/broken.yaml:7:5: timeline.0.bogus: unknown key 'bogus'*"], consecutive=False
    )
    assert re.search(r"scenarios/syntax\.yml:\d+:\d+: YAML syntax error", result.stdout.str())
    assert "Traceback" not in result.stdout.str()


def test_k_and_m_select_scenarios_by_tag(project: pytest.Pytester) -> None:
    write(project, "scenarios/tiny.yaml", TINY)
    write(project, "scenarios/tokens.yaml", TOO_MANY_TOKENS)
    by_keyword = project.runpytest_subprocess("--collect-only", "-q", "-k", "tokens and not too")
    assert collected(by_keyword) == ["scenarios/tiny.yaml::tiny"]
    # --strict-markers: the tags are registered markers, not unknown ones.
    by_marker = project.runpytest_subprocess(
        "--collect-only", "-q", "--strict-markers", "-m", "broker"
    )
    assert collected(by_marker) == ["scenarios/tokens.yaml::too many tokens"]


def test_yaml_outside_a_scenarios_directory_is_not_collected(project: pytest.Pytester) -> None:
    write(project, "scenarios/nested/tiny.yaml", TINY)
    write(project, ".github/workflows/ci.yaml", "on: push\njobs: {}\n")
    write(project, "config/scenarios.yaml", TINY)  # named so, but not in such a directory
    result = project.runpytest_subprocess("--collect-only", "-q", ".")
    assert collected(result) == ["scenarios/nested/tiny.yaml::tiny"]


def test_html_report_and_junit_properties(project: pytest.Pytester) -> None:
    write(project, "scenarios/tiny.yaml", TINY)
    write(project, "scenarios/tokens.yaml", TOO_MANY_TOKENS)
    result = project.runpytest_subprocess(
        "scenarios",
        "--squall-html",
        "out/report.html",
        "--junitxml",
        "out/junit.xml",
        "--squall-seed",
        "11",
    )
    result.assert_outcomes(passed=1, failed=1)
    report = project.path / "out" / "report.html"
    result.stdout.fnmatch_lines(["*squall: HTML report of 2 scenario(s)*", str(report)])
    page = report.read_text(encoding="utf-8")
    assert "tiny" in page
    assert "too many tokens" in page
    cases = ET.parse(project.path / "out" / "junit.xml").getroot().iter("testcase")
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in cases
    }
    assert properties["tiny"]["seed"] == "11"
    assert properties["tiny"]["simulated_seconds"] == "5.0"
    assert properties["tiny"]["journal_digest"].startswith("sha256:")
    assert "too many tokens" in properties


def test_mock_broker_fixture_serves_a_broker_for_hand_written_tests(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_hand_written=dedent(
            """
            import asyncio
            import time
            from datetime import datetime, timedelta

            import httpx
            import pytest

            from mocks.broker import BrokerConfig
            from mocks.feed import opening_bell


            async def test_health(mock_broker):
                async with httpx.AsyncClient() as http:
                    response = await http.get(mock_broker.url + "/_squall/health")
                assert response.status_code == 200
                assert mock_broker.url.startswith("http://127.0.0.1:")


            @pytest.mark.parametrize(
                "mock_broker", [BrokerConfig(profile="paper")], indirect=True
            )
            async def test_indirect_config(mock_broker):
                assert (await mock_broker.control.config())["profile"] == "paper"


            async def token_expiry(url, appkey):
                # The broker stamps 09:00 KST today + its clock + 24 h on each new token, so
                # the expiry reads the broker's clock without going through the control plane.
                async with httpx.AsyncClient(base_url=url) as http:
                    response = await http.post(
                        "/oauth2/tokenP",
                        json={
                            "grant_type": "client_credentials",
                            "appkey": appkey,
                            "appsecret": "s" * 180,
                        },
                    )
                stamp = response.json()["access_token_token_expired"]
                return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")


            @pytest.mark.looptime
            async def test_shares_the_virtual_clock(mock_broker):
                opening = opening_bell().replace(tzinfo=None) + timedelta(days=1)
                started = time.perf_counter()
                first = await token_expiry(mock_broker.url, "A" * 36)
                await asyncio.sleep(600)
                # Another app key: the same one would get its first token back.
                second = await token_expiry(mock_broker.url, "B" * 36)
                assert timedelta(0) <= first - opening < timedelta(seconds=1)
                assert timedelta(seconds=600) <= second - opening < timedelta(seconds=601)
                assert time.perf_counter() - started < 5
            """
        )
    )
    result = project.runpytest_subprocess(
        "-v", "-W", "error::pytest.PytestUnraisableExceptionWarning"
    )
    result.assert_outcomes(passed=3)


def test_squall_broker_config_fixture_can_be_overridden(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from mocks.broker import BrokerConfig

        @pytest.fixture
        def squall_broker_config():
            return BrokerConfig(requests_per_second=3)
        """
    )
    project.makepyfile(
        test_override="""
        async def test_budget(mock_broker):
            assert mock_broker.config.requests_per_second == 3
            assert (await mock_broker.control.config())["requests_per_second"] == 3
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_stack_fixture_opens_a_scenarios_parts(project: pytest.Pytester) -> None:
    write(project, "scenarios/tiny.yaml", TINY)
    project.makepyfile(
        test_stack="""
        async def test_quote_through_the_stack(stack):
            async with stack("scenarios/tiny.yaml", seed=3) as parts:
                quote = await parts.service.quote("005930")
                assert quote.price > 0
                journal = await parts.broker.journal(path="/oauth2/tokenP")
                assert len(journal) == 1
                assert (await parts.broker.config())["seed"] == 3
        """
    )
    project.runpytest_subprocess("test_stack.py").assert_outcomes(passed=1)


def test_a_report_file_holding_a_secret_fails_the_session(project: pytest.Pytester) -> None:
    # The scenario's name stands for a secret that reached the reports: the conftest adds
    # it to the run's secrets, as the runner adds the tokens a broker issued.
    write(project, "scenarios/tiny.yaml", TINY.replace("name: tiny", "name: tiny-leaky-name-1"))
    write(
        project,
        "conftest.py",
        "from harness import leaks\nleaks.SEEN.add('a test secret', ['tiny-leaky-name-1'])\n",
    )
    result = project.runpytest_subprocess(
        "scenarios", "--squall-html", "report.html", "--junitxml", "junit.xml"
    )
    result.assert_outcomes(passed=1)  # the scenario itself passed ...
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # ... the session did not
    result.stdout.fnmatch_lines(
        [
            "*squall: a report file holds a secret of a run*",
            "*report.html:*: holds a test secret",
            "*junit.xml:*: holds a test secret",
        ]
    )
    assert "tiny-leaky-name-1" not in "\n".join(line for line in result.outlines if "holds" in line)


def test_clean_report_files_leave_the_session_green(project: pytest.Pytester) -> None:
    write(project, "scenarios/tiny.yaml", TINY)
    result = project.runpytest_subprocess(
        "scenarios", "--squall-html", "report.html", "--junitxml", "junit.xml"
    )
    assert result.ret == pytest.ExitCode.OK
    assert "holds a secret" not in result.stdout.str()
