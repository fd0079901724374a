"""A run turns the cycle collector down and leaves it as it found it."""

from __future__ import annotations

import gc

from harness.runner import run_scenario
from harness.scenario import load_text

QUOTES = """\
name: quotes
duration: 3
timeline:
  - {name: q, at: 0, quotes: {rate: 1}}
expect:
  - {success_ratio: {workload: q}, equals: 1}
"""


def test_a_run_restores_the_collectors_thresholds_and_freezes_nothing() -> None:
    gc.set_threshold(700, 10, 10)
    try:
        result = run_scenario(load_text(QUOTES, "q.yaml"), "q.yaml")
        assert result.passed, result.error
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(700, 10, 10)
