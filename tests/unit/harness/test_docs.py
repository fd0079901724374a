"""docs/scenarios.md and docs/scenario.schema.json stay true to the scenario language.

- Every complete scenario in the reference loads; every one marked ``<!-- invalid -->``
  doesn't, and the error output shown for it is the loader's real output.
- Every key and every fixed choice of every model a scenario file can reach is documented,
  and so are the system settings and metrics a scenario can name.
- The JSON Schema in docs/ is the one ``squall schema`` prints.
"""

from __future__ import annotations

import itertools
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import pytest
from pydantic import BaseModel

from harness.scenario import Scenario, ScenarioError, load_text
from harness.scenario.model import DatabaseAction, metric_names
from harness.scenario.schema import json_schema
from harness.stack import _STACK_OWNED, ACCOUNT, APPKEY, APPSECRET
from mocks.faults.feed import FeedAction
from mocks.faults.model import FaultAction
from mocks.webhook import WebhookAction
from system.broker import KisClient, KisSettings
from system.gateway import GatewaySettings
from system.market import FeedSettings
from system.service import ServiceSettings, TradingService
from system.storage import PoolConfig, StorageSettings
from system.trading.alerts import AlertSettings
from system.trading.settings import TradingSettings

ROOT = Path(__file__).resolve().parents[3]
DOC_PATH = ROOT / "docs" / "scenarios.md"
SCHEMA_PATH = ROOT / "docs" / "scenario.schema.json"
REGENERATE = "squall schema > docs/scenario.schema.json"
SCENARIO_STARTS = ("name:", "# yaml-language-server:")
_MARK = re.compile(r"^<!--\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the reference, and the HTML comment right before it."""

    line: int  # 1-based line of the opening fence
    language: str
    text: str
    mark: str | None

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0] if self.text.strip() else ""

    @property
    def is_scenario(self) -> bool:
        return self.language == "yaml" and self.first_line.startswith(SCENARIO_STARTS)

    @property
    def invalid(self) -> bool:
        return self.mark is not None and self.mark.split(":")[0].strip() == "invalid"

    @property
    def path(self) -> str:
        """The file name an invalid example's error output shows (``<!-- invalid: path -->``)."""
        _, _, given = (self.mark or "").partition(":")
        return given.strip() or "<scenario>"


def fenced_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("```"):
            index += 1
            continue
        start, language = index, line[3:].strip()
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("```")), None)
        assert end is not None, f"docs/scenarios.md:{start + 1}: this code block is never closed"
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        match = _MARK.match(previous.strip())
        text = "\n".join(lines[start + 1 : end]) + "\n"
        blocks.append(Block(start + 1, language, text, match.group(1) if match else None))
        index = end + 1
    return blocks


DOC = DOC_PATH.read_text(encoding="utf-8")
BLOCKS = fenced_blocks(DOC)
SCENARIOS = [block for block in BLOCKS if block.is_scenario]
VALID = [block for block in SCENARIOS if not block.invalid]
INVALID = [block for block in SCENARIOS if block.invalid]


def block_id(block: Block) -> str:
    return f"line {block.line}: {block.first_line}"


# --- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize("block", VALID, ids=block_id)
def test_the_example_loads(block: Block) -> None:
    try:
        load_text(block.text, f"docs/scenarios.md (example at line {block.line})")
    except ScenarioError as exc:
        pytest.fail(
            f"the example at docs/scenarios.md:{block.line} is not a valid scenario; fix it, "
            f"or mark it <!-- invalid --> if it shows a mistake:\n{exc}"
        )


@pytest.mark.parametrize("block", INVALID, ids=block_id)
def test_the_invalid_example_is_refused(block: Block) -> None:
    with pytest.raises(ScenarioError):
        load_text(block.text, block.path)


def test_the_error_output_shown_is_the_loaders() -> None:
    """An ``<!-- errors -->`` block after an invalid example shows exactly its problems."""
    shown = 0
    for block, following in itertools.pairwise(BLOCKS):
        if not (block.is_scenario and block.invalid and following.mark == "errors"):
            continue
        with pytest.raises(ScenarioError) as caught:
            load_text(block.text, block.path)
        expected = [str(problem) for problem in caught.value.problems]
        printed = [
            line for line in following.text.splitlines() if line.startswith(f"{block.path}:")
        ]
        assert printed == expected, (
            f"the error output at docs/scenarios.md:{following.line} is not what the loader "
            f"reports for the example at line {block.line}; paste this instead:\n"
            + "\n".join(expected)
        )
        shown += 1
    assert shown >= 1, "the reference must show real error output after an invalid example"


def test_every_yaml_block_is_a_checked_scenario_or_marked_as_a_fragment() -> None:
    unchecked = [
        f"docs/scenarios.md:{block.line}: {block.first_line!r}"
        for block in BLOCKS
        if block.language == "yaml" and not block.is_scenario and block.mark != "fragment"
    ]
    assert not unchecked, (
        "these yaml blocks are not complete scenarios, so nothing checks them; start them "
        f"with 'name:' or mark them <!-- fragment -->: {unchecked}"
    )


def _kind_models(action: Any) -> list[type[BaseModel]]:
    """The members of a ``do`` union (``Annotated[A | B | ..., discriminator]``)."""
    union = typing.get_args(action)[0]
    return list(typing.get_args(union))


def _kinds(action: Any) -> list[str]:
    """The ``kind`` of each member of a ``do`` union."""
    return [member.model_fields["kind"].default for member in _kind_models(action)]


def _examples_with(target: str, kind: str) -> list[Block]:
    return [
        block
        for block in VALID
        if any(
            step.fault is not None and step.fault.target == target and step.fault.do.kind == kind
            for step in load_text(block.text).timeline
        )
    ]


# Each fault target and the union of its ``do`` kinds.
ACTIONS = {
    "broker": FaultAction,
    "feed": FeedAction,
    "database": DatabaseAction,
    "alerts": WebhookAction,
}


@pytest.mark.parametrize(
    ("target", "kind"),
    [(target, kind) for target, action in ACTIONS.items() for kind in _kinds(action)],
)
def test_every_fault_kind_of_every_target_has_a_worked_example(target: str, kind: str) -> None:
    examples = _examples_with(target, kind)
    assert examples, (
        f"docs/scenarios.md has no valid example scenario with a target: {target} {kind!r} fault"
    )


@pytest.mark.parametrize(
    ("target", "kinds"),
    [
        (
            "feed",
            {
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
            },
        ),
        (
            "database",
            {
                "outage",
                "latency",
                "bandwidth",
                "blackhole",
                "reset",
                "close-after",
                "slow-close",
                "refuse",
                "cut",
            },
        ),
        ("alerts", {"outage", "error", "hang"}),
    ],
)
def test_the_kinds_are_the_ones_the_reference_documents(target: str, kinds: set[str]) -> None:
    """Guards the test above: an empty list would parametrize nothing and prove nothing."""
    assert set(_kinds(ACTIONS[target])) == kinds


def test_the_error_kind_is_shown_with_a_broker_code_and_with_a_bare_status() -> None:
    errors = [
        step.fault.do
        for block in VALID
        for step in load_text(block.text).timeline
        if step.fault is not None and step.fault.do.kind == "error"
    ]
    assert any(getattr(do, "code", None) for do in errors), "no error example with a code"
    assert any(
        getattr(do, "code", None) is None and getattr(do, "status", None) for do in errors
    ), "no error example with a bare status"


# --- every key is documented ---------------------------------------------------------------


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation can hold, through Optional, lists, unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin in (typing.Annotated, Union, types.UnionType, list, dict):
        args = typing.get_args(annotation)
        for arg in args[:1] if origin is typing.Annotated else args:
            yield from _models(arg)


def _choices(annotation: Any) -> Iterator[str]:
    """The fixed text values an annotation allows (``Literal`` members)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        yield from (value for value in typing.get_args(annotation) if isinstance(value, str))
    elif origin is not None:
        args = typing.get_args(annotation)
        for arg in args[:1] if origin is typing.Annotated else args:
            yield from _choices(arg)


@dataclass(frozen=True)
class Vocabulary:
    """Keys (as written in YAML) and fixed choices, each with where it appears."""

    keys: dict[str, set[str]]
    choices: dict[str, set[str]]


def scenario_vocabulary() -> Vocabulary:
    """Every key and fixed choice of every model reachable from Scenario."""
    vocabulary = Vocabulary({}, {})
    seen: set[type[BaseModel]] = set()
    pending: list[type[BaseModel]] = [Scenario]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            vocabulary.keys.setdefault(field.alias or name, set()).add(model.__name__)
            for choice in _choices(field.annotation):
                vocabulary.choices.setdefault(choice, set()).add(f"{model.__name__}.{name}")
            pending.extend(_models(field.annotation))
    return vocabulary


def _undocumented(words: set[str]) -> list[str]:
    return sorted(word for word in words if f"`{word}`" not in DOC)


def test_every_scenario_key_and_choice_is_documented() -> None:
    vocabulary = scenario_vocabulary()
    where = {
        **{word: f"a key of {', '.join(sorted(s))}" for word, s in vocabulary.keys.items()},
        **{word: f"a choice of {', '.join(sorted(s))}" for word, s in vocabulary.choices.items()},
    }
    missing = _undocumented(set(where))
    assert not missing, "docs/scenarios.md doesn't mention these (as `word`): " + "; ".join(
        f"{word} ({where[word]})" for word in missing
    )


def test_the_vocabulary_walk_reaches_every_model() -> None:
    """Guards the test above: a walk that stopped at the top would prove nothing."""
    vocabulary = scenario_vocabulary()
    keys = ("for", "from", "tr_id", "median", "fraction", "workload", "settle", "burst")
    feed_keys = ("event", "all_connections", "copies", "tickers", "ticker", "ping_interval_s")
    database_keys = ("direction", "connection", "jitter", "bytes_per_second", "bytes", "path")
    for deep in keys + feed_keys + database_keys:
        assert deep in vocabulary.keys
    choices = ("expire-tokens", "orders-not-duplicated", "unhealthy", "truncated", "limit")
    feed_choices = ("slow-reader", "ticks-match-market", "gateway", "pingpong", "rest")
    database_choices = ("outage", "close-after", "downstream", "writes-not-lost", "api")
    for choice in choices + feed_choices + database_choices:
        assert choice in vocabulary.choices
    assert "for_" not in vocabulary.keys
    assert "from_" not in vocabulary.keys


def test_every_system_setting_a_scenario_may_override_is_documented() -> None:
    client = set(KisSettings.model_fields) - _STACK_OWNED
    service = set(ServiceSettings.model_fields)
    feed = set(FeedSettings.model_fields) - _STACK_OWNED
    gateway = set(GatewaySettings.model_fields) - _STACK_OWNED
    # system.storage: its own fields, and its pool's; the stack owns the pool's url.
    storage = set(StorageSettings.model_fields)
    pool = set(PoolConfig.model_fields) - _STACK_OWNED
    trading = set(TradingSettings.model_fields)
    alerts = set(AlertSettings.model_fields) - _STACK_OWNED
    assert {"stall_after_s", "books"} <= feed
    assert {"send_buffer_bytes", "pong_timeout_s"} <= gateway
    assert {"buffer_capacity", "on_full", "transactional", "pool"} <= storage
    assert {"acquire_timeout_s", "probe_timeout_s"} <= pool
    assert {"mode", "daily_loss_limit", "codes"} <= trading
    assert {"max_attempts", "backoff_max_s", "timeout_s"} <= alerts
    missing = _undocumented(
        client | service | feed | gateway | storage | pool | trading | alerts | _STACK_OWNED
    )
    assert not missing, f"docs/scenarios.md doesn't mention these system settings: {missing}"


async def test_every_system_metric_is_documented() -> None:
    settings = KisSettings(
        base_url="http://127.0.0.1:9", appkey=APPKEY, appsecret=APPSECRET, account=ACCOUNT
    )
    async with TradingService(KisClient(settings)) as service:
        names = set(service.metrics())
    assert len(names) > 10
    missing = _undocumented(names)
    assert not missing, f"docs/scenarios.md doesn't list these metrics: {missing}"


def test_every_metric_a_scenario_may_name_is_documented() -> None:
    """The feed client's and the gateway's too: ``metric:`` accepts every one of them."""
    names = set(metric_names())
    assert {"feed_reconnects", "feed_state", "gateway_messages_coalesced"} <= names
    assert {"storage_buffer_replayed", "storage_pool_waiting", "orders_not_recorded"} <= names
    missing = _undocumented(names)
    assert not missing, f"docs/scenarios.md doesn't list these metrics: {missing}"


# --- the JSON Schema -------------------------------------------------------------------------


def test_the_schema_in_docs_is_the_generated_one() -> None:
    generated = json_schema()
    stored = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert stored == generated, f"docs/scenario.schema.json is stale; run: {REGENERATE}"
    text = json.dumps(generated, indent=2, ensure_ascii=False) + "\n"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == text, (
        "docs/scenario.schema.json is not formatted as `squall schema` prints it; "
        f"run: {REGENERATE}"
    )


def _schema_properties(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key, value
        for value in node.values():
            yield from _schema_properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schema_properties(value)


def test_the_schema_names_keys_as_they_are_written() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema
    assert schema["title"]
    assert schema["description"]
    keys = {key for key, _ in _schema_properties(schema)}
    written = set(scenario_vocabulary().keys)
    assert keys == written, f"schema keys that differ from the YAML keys: {keys ^ written}"
    step = schema["$defs"]["Step"]["properties"]
    assert "for" in step
    assert "from" in schema["$defs"]["Expectation"]["properties"]


def test_the_schema_requires_each_fault_kind() -> None:
    """Editors must flag ``do: {seconds: 1}``: the models refuse a ``do`` without ``kind``."""
    definitions = json_schema()["$defs"]
    for kind in _kinds(FaultAction):
        assert "kind" in definitions[kind.capitalize()].get("required", []), kind
    with pytest.raises(ScenarioError):
        load_text("name: x\nduration: 9\ntimeline:\n  - {at: 1, fault: {do: {seconds: 1}}}\n")


@pytest.mark.parametrize(
    ("spec", "action"), [("DatabaseFaultSpec", DatabaseAction), ("FeedFaultSpec", FeedAction)]
)
def test_the_schema_requires_each_kind_of_a_target_and_that_targets_key(
    spec: str, action: Any
) -> None:
    definitions = json_schema()["$defs"]
    for model in _kind_models(action):
        assert "kind" in definitions[model.__name__].get("required", []), model.__name__
    # Without its target such a fault would read as a broker fault, with other keys.
    assert "target" in definitions[spec]["required"]


def test_a_broker_fault_needs_no_target_but_a_feed_fault_needs_a_kind() -> None:
    definitions = json_schema()["$defs"]
    assert "target" not in definitions["FaultSpec"].get("required", [])
    with pytest.raises(ScenarioError):
        load_text(
            "name: x\nduration: 9\nneeds: [broker, feed]\n"
            "timeline:\n  - {at: 1, fault: {target: feed, do: {seconds: 1}}}\n"
        )
