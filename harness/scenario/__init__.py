"""The scenario language (``model``) and reading it from YAML files (``loader``)."""

from harness.scenario.loader import Problem, ScenarioError, discover, load_file, load_text
from harness.scenario.model import Expectation, Scenario, Step

__all__ = [
    "Expectation",
    "Problem",
    "Scenario",
    "ScenarioError",
    "Step",
    "discover",
    "load_file",
    "load_text",
]
