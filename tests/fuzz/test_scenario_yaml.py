"""Scenario YAML under fuzzed structure and values.

A QA engineer's file, however wrong, must come back as a valid scenario or a
``ScenarioError`` whose every problem has a position (``file:line:column``) and a message,
never a traceback. The near-misses start from the shipped scenarios: each example takes one
and breaks one thing in it, by structure (a value swapped for junk, a key dropped or added)
or by text (cut short, a character inserted).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from harness.scenario import load_text
from harness.scenario.loader import ScenarioError
from tests.fuzz.strategies import JSON_VALUES, TEXT

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").rglob("*.yaml"))
TEXTS = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in SHIPPED}
TREES = {name: yaml.safe_load(text) for name, text in TEXTS.items()}
WHERE = re.compile(r"^fuzz\.yaml:\d+:\d+: ")


def _check(text: str) -> None:
    refused: ScenarioError | None = None
    try:
        load_text(text, "fuzz.yaml")
    except ScenarioError as error:
        refused = error
    if refused is None:
        event("loaded")
        return
    assert refused.problems, "a ScenarioError with no problem in it"
    for problem in refused.problems:
        assert problem.line >= 1, problem
        assert problem.column >= 1, problem
        assert problem.message.strip(), problem
        assert WHERE.match(str(problem)), str(problem)
    event("refused: " + refused.problems[0].message.split(":")[0][:40])


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed scenario where a value sits."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _replaced(tree: Any, path: tuple[Any, ...], change: Any) -> Any:
    """A copy of ``tree`` with ``change`` applied at ``path``: a new value, or (``_DROP``)
    the entry removed."""
    if not path:
        return change
    head, rest = path[0], path[1:]
    copy: Any = dict(tree) if isinstance(tree, dict) else list(tree)
    if not rest and change is _DROP:
        del copy[head]
    else:
        copy[head] = _replaced(tree[head], rest, change)
    return copy


_DROP = object()
# Values a scenario key plausibly gets wrong: other types, negative or absurd times,
# YAML's booleans-by-another-name, unknown kinds and targets.
PLAUSIBLE = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [-1, 0, 0.0001, 1e12, float("inf"), float("nan"), "yes", "on", "5", [], {}, None]
    ),
    st.sampled_from(["hang", "error", "outage", "latency", "database", "feed", "redis"]),
    st.sampled_from(["EGW00133", "EGW00201", "ok", "failed", "virtual", "real"]),
)


@st.composite
def broken_trees(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(sorted(TREES)))
    tree = TREES[name]
    paths = _paths(tree)
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["value", "drop", "add"]))
    if how == "value":
        tree = _replaced(tree, path, draw(PLAUSIBLE))
    elif how == "drop":
        tree = _replaced(tree, path, _DROP)
    else:
        parent = path[:-1]
        extra_key = draw(st.sampled_from(["at", "for", "until", "do", "kind", "fault"]) | TEXT)

        def add(node: Any) -> Any:
            return {**node, extra_key: draw(PLAUSIBLE)} if isinstance(node, dict) else node

        target = tree
        for part in parent:
            target = target[part]
        tree = _replaced(tree, parent, add(target)) if parent else add(tree)
    event(f"{how} in {name.split('/')[1]}")
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)


@given(text=broken_trees())
def test_a_scenario_broken_in_structure_loads_or_says_where(text: str) -> None:
    _check(text)


@st.composite
def broken_texts(draw: st.DrawFn) -> str:
    text = TEXTS[draw(st.sampled_from(sorted(TEXTS)))]
    where = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["cut", "insert", "delete"]))
    if how == "cut":
        return text[:where]
    if how == "delete":
        return text[:where] + text[where + draw(st.integers(1, 40)) :]
    inserted = draw(
        st.sampled_from(
            [":", "-", "{", "[", "'", '"', "\t", "\n", "&a", "*a", "!!python/object ", "%"]
        )
        | st.text(max_size=5)
    )
    return text[:where] + inserted + text[where:]


@given(text=broken_texts())
def test_a_scenario_broken_in_text_loads_or_says_where(text: str) -> None:
    _check(text)


@given(text=st.text(alphabet=st.sampled_from(list(":-{}[]'\"#&*!|>%@`,? \n\tab01")), max_size=80))
def test_yaml_like_noise_loads_or_says_where(text: str) -> None:
    _check(text)


def test_the_structure_fuzz_starts_from_valid_scenarios() -> None:
    # Otherwise every "near miss" would be refused for the same reason, far from its change.
    for name, text in TEXTS.items():
        load_text(text, name)
