"""The alert webhook in the scenario language: ``needs: [... alerts]``, faults with
``target: alerts``, ``system.alerts`` and the ``alerts_received`` measure; what loads, what
is refused and where, and how the measure counts the receiver's journal."""

from __future__ import annotations

import textwrap

import pytest

from harness.expect import Evidence, check
from harness.scenario import Problem, Scenario, ScenarioError, load_text
from harness.scenario.model import AlertsFaultSpec, metric_names
from mocks.webhook import WebhookEntry, WebhookError, WebhookHang
from system.trading.alerts import metric_names as alert_metric_names

PATH = "scenarios/test.yaml"
HEAD = """\
name: x
duration: 300
needs: [broker, feed, trading, alerts]
"""


def load(body: str) -> Scenario:
    """``HEAD`` and then ``body`` (indented as the test's source, taken out here)."""
    return load_text(HEAD + textwrap.dedent(body), PATH)


def only_problem(text: str) -> Problem:
    with pytest.raises(ScenarioError) as caught:
        load_text(textwrap.dedent(text), PATH)
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


def test_a_webhook_fault_loads_with_its_window() -> None:
    scenario = load(
        """\
        system:
          alerts: {max_attempts: 10}
        timeline:
          - {name: down, at: 50, for: 60, fault: {target: alerts, do: {kind: outage}}}
          - {name: failing, at: 200, fault: {target: alerts, do: {kind: error, status: 500}}}
          - {name: hanging, at: 250, until: 260, fault: {target: alerts, do: {kind: hang}}}
        expect:
          - alerts_received: {category: halt, outcome: delivered}
            within: 60
            after: down
            equals: 1
          - {metric: alerts_retried, at_least: 1}
        """
    )
    down, failing, hanging = scenario.timeline
    assert isinstance(down.fault, AlertsFaultSpec)
    assert down.fault.do.kind == "outage"
    assert down.when().model_dump(by_alias=True, exclude_none=True) == {"from": 50, "until": 110}
    assert isinstance(failing.fault, AlertsFaultSpec)
    assert failing.fault.do == WebhookError(status=500)
    assert failing.when().until is None
    assert isinstance(hanging.fault, AlertsFaultSpec)
    assert hanging.fault.do == WebhookHang()
    assert scenario.system.alerts == {"max_attempts": 10}
    assert scenario.expect[0].measure == "alerts_received"
    assert scenario.expect[1].metric == "alerts_retried"


def test_every_notifier_metric_is_a_metric_a_scenario_may_name() -> None:
    assert set(alert_metric_names()) <= set(metric_names())


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        pytest.param(
            "name: x\nduration: 300\nneeds: [broker, feed, alerts]\n",
            (3, 1),
            "needs: the alert webhook hears from the trading desk; add trading",
            id="alerts-without-the-desk",
        ),
        pytest.param(
            "name: x\nduration: 300\nneeds: [broker, feed, trading]\n"
            "timeline:\n  - {at: 5, fault: {target: alerts, do: {kind: outage}}}\n",
            (5, 29),
            "timeline.0.fault.target: step 'fault@5s' targets 'alerts', which 'needs' lacks",
            id="a-webhook-fault-without-alerts",
        ),
        pytest.param(
            "name: x\nduration: 300\nneeds: [broker, feed, trading]\n"
            "expect:\n  - {alerts_received: {}, equals: 1}\n",
            (5, 6),
            "expect.0.alerts_received: alerts_received counts what the alert webhook got; "
            "add alerts to 'needs'",
            id="alerts-received-without-alerts",
        ),
        pytest.param(
            "name: x\nduration: 300\nneeds: [broker, feed, trading]\n"
            "system:\n  alerts: {max_attempts: 2}\n",
            (5, 3),
            "system.alerts: alert settings need the webhook; add alerts to 'needs'",
            id="alert-settings-without-alerts",
        ),
        pytest.param(
            HEAD + "timeline:\n  - {at: 5, fault: {target: alerts, every: 2, do: {kind: hang}}}\n",
            (5, 37),
            "timeline.0.fault.every: unknown key 'every'; valid keys here: do, target",
            id="a-webhook-fault-holds-for-its-window",
        ),
        pytest.param(
            HEAD + "timeline:\n  - {at: 5, fault: {target: alerts, do: {kind: down}}}\n",
            (5, 37),
            "timeline.0.fault.do: Input tag 'down' found using 'kind' does not match any of the "
            "expected tags: 'outage', 'error', 'hang'",
            id="an-unknown-kind-lists-the-kinds",
        ),
        pytest.param(
            HEAD
            + "timeline:\n"
            + "  - {at: 5, fault: {target: alerts, do: {kind: error, status: 302}}}\n",
            (5, 63),
            "timeline.0.fault.do.error.status: Input should be greater than or equal to 400",
            id="an-error-is-an-error-status",
        ),
        pytest.param(
            HEAD + "expect:\n  - {alerts_received: {category: hlat}, equals: 0}\n",
            (5, 34),
            "expect.0.alerts_received.category: Input should be 'halt' or 'release'",
            id="a-misspelt-category-counts-nothing-so-it-is-refused",
        ),
    ],
)
def test_a_refusal_is_one_problem_at_its_position(
    text: str, position: tuple[int, int], message: str
) -> None:
    problem = only_problem(text)
    assert (problem.line, problem.column) == position, problem
    assert problem.message == message


def test_where_alerts_go_is_the_stack_s_and_the_settings_are_the_notifier_s() -> None:
    with pytest.raises(ScenarioError) as caught:
        load(
            """\
            system:
              alerts: {webhook_url: "http://example.com/hook", max_attempts: 0, retries: 3}
            """
        )
    assert [(p.line, p.column, p.message) for p in caught.value.problems] == [
        (5, 12, "system.alerts.webhook_url: 'webhook_url' is set by the stack, not by scenarios"),
        (5, 52, "system.alerts.max_attempts: Input should be greater than or equal to 1"),
        (
            5,
            69,
            "system.alerts.retries: unknown setting; valid ones: backoff_base_s, backoff_max_s, "
            "close_timeout_s, max_attempts, queue_size, timeout_s",
        ),
    ]


def received(at: float, category: str, outcome: str) -> WebhookEntry:
    status = {"delivered": 200, "error": 503, "hung": None}[outcome]
    return WebhookEntry(0, at, "/hooks/x", "id", category, "critical", "t", outcome, status)  # type: ignore[arg-type]


def test_alerts_received_counts_the_matching_posts_in_the_window() -> None:
    scenario = load(
        """\
        timeline:
          - {name: down, at: 50, for: 60, fault: {target: alerts, do: {kind: error}}}
        expect:
          - alerts_received: {category: halt, outcome: delivered}
            within: 60
            after: down
            equals: 1
          - {alerts_received: {outcome: error}, until: 110, at_least: 2}
          - {alerts_received: {}, equals: 5}
          - {alerts_received: {category: release}, equals: 0}
        """
    )
    evidence = Evidence(
        duration=300.0,
        journal=[],
        calls=[],
        samples=[],
        alerts=[
            received(60.0, "halt", "error"),
            received(61.0, "halt", "error"),
            received(75.0, "halt", "error"),
            received(111.5, "halt", "delivered"),
            received(240.0, "release", "delivered"),
        ],
    )
    results = [
        (c.passed, c.observed)
        for c in (check(scenario, e, evidence, None, "expectation") for e in scenario.expect)
    ]
    assert results == [
        (True, "1 in 110–170 s"),
        (True, "3 in 0–110 s"),
        (True, "5 in 0–300 s"),
        (False, "1 in 0–300 s"),
    ]
