"""Which runs sample the system's metrics every second: those with a check that reads them
before the end."""

from __future__ import annotations

import pytest

from harness.runner import metrics_sampled
from harness.scenario import load_text

SCENARIO = """\
name: quotes
duration: 60
timeline:
  - {{name: q, at: 0, quotes: {{rate: 1}}}}
  - {{name: burst, at: 20, for: 5, fault: {{do: {{kind: error, status: 503}}}}}}
{expect}
"""


@pytest.mark.parametrize(
    ("expect", "sampled"),
    [
        ("expect:\n  - {metric: quotes_served, at_least: 1}", False),
        ("expect:\n  - {health: healthy, until: 10}", False),
        ("expect:\n  - {metric: quotes_served, until: 30, at_least: 1}", True),
        ("steady_state:\n  settle: 10\n  expect:\n    - {metric: quotes_failed, equals: 0}", True),
        ("steady_state:\n  settle: 10\n  expect:\n    - {health: healthy}", False),
    ],
)
def test_metrics_are_sampled_only_for_a_check_that_reads_them_before_the_end(
    expect: str, sampled: bool
) -> None:
    assert metrics_sampled(load_text(SCENARIO.format(expect=expect), "s.yaml")) is sampled
