"""A scenario's brokers: which it runs against, and what each run is called."""

from __future__ import annotations

import pytest

from harness.runner import Options, run_name, run_scenario
from harness.scenario import ScenarioError, load_text

QUOTES = """\
name: quotes
duration: 5
{brokers}
timeline:
  - {{name: q, at: 0, quotes: {{rate: 1}}}}
"""


def test_a_scenario_runs_against_kis_unless_it_says_otherwise() -> None:
    assert load_text(QUOTES.format(brokers=""), "s.yaml").brokers == ["kis"]


def test_each_broker_once() -> None:
    with pytest.raises(ScenarioError, match="each broker once"):
        load_text(QUOTES.format(brokers="brokers: [kis, kis]"), "s.yaml")


def test_an_unknown_broker_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="'kis' or 'kiwoom'"):
        load_text(QUOTES.format(brokers="brokers: [ls]"), "s.yaml")


def test_a_scenario_that_needs_the_feed_may_run_on_kiwoom() -> None:
    text = QUOTES.format(brokers="brokers: [kis, kiwoom]\nneeds: [broker, feed]")
    assert load_text(text, "s.yaml").brokers == ["kis", "kiwoom"]


def test_a_run_is_named_with_its_broker_only_when_there_are_several() -> None:
    one = load_text(QUOTES.format(brokers="brokers: [kiwoom]"), "s.yaml")
    both = load_text(QUOTES.format(brokers="brokers: [kis, kiwoom]"), "s.yaml")
    assert run_name(one, "kiwoom") == "quotes"
    assert run_name(both, "kiwoom") == "quotes [kiwoom]"


def test_a_broker_the_scenario_does_not_list_is_refused_before_anything_runs() -> None:
    scenario = load_text(QUOTES.format(brokers=""), "s.yaml")
    result = run_scenario(scenario, "s.yaml", Options(broker="kiwoom"))
    assert not result.passed
    assert result.error is not None
    assert "runs against kis only" in result.error
    assert result.simulated_seconds == 0.0


def test_a_kis_only_client_setting_is_refused_for_a_kiwoom_run() -> None:
    text = QUOTES.format(brokers="brokers: [kis, kiwoom]\nsystem:\n  client: {custtype: B}")
    with pytest.raises(ScenarioError, match=r"client\.custtype"):
        load_text(text, "s.yaml")


def test_broker_requests_take_the_codes_of_the_brokers_the_scenario_runs_against() -> None:
    counted = "expect:\n  - {broker_requests: {code: '%s'}, equals: 0}\n"
    kiwoom = QUOTES.format(brokers="brokers: [kiwoom]") + counted % "1700"
    assert load_text(kiwoom, "s.yaml").brokers == ["kiwoom"]
    with pytest.raises(ScenarioError, match="EGW00201"):
        load_text(QUOTES.format(brokers="brokers: [kiwoom]") + counted % "EGW00201", "s.yaml")
    with pytest.raises(ScenarioError, match="1700"):
        load_text(QUOTES.format(brokers="") + counted % "1700", "s.yaml")
