"""Reading scenario files: safe YAML, strict models, and errors that point at file:line:column.

Two YAML 1.1 traps are closed here because scenarios are full of stock codes: ``000660``
would load as the octal number 432 and ``on``/``no`` as booleans. Here numbers are plain
decimals without leading zeros (so a code stays the string it looks like) and booleans are
only ``true``/``false``, as in YAML 1.2. Duplicate keys are errors too:
PyYAML would keep the last one silently.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.scenario.model import Misplaced, Scenario

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(
    r"^[-+]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"
    r"|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"
)
_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_REPLACED = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


class _ScenarioLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars and duplicate keys refused."""


_ScenarioLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ScenarioLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_ScenarioLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_ScenarioLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _construct_mapping(loader: _ScenarioLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be a plain value such as a name, not a {type(key).__name__}",
                key_node.start_mark,
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice in this mapping (first on line "
                f"{seen[key].start_mark.line + 1}); remove one",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node)


_ScenarioLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file, at a 1-based line and column."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file can't be used; ``problems`` lists each with its position."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def load_text(text: str, path: str = "<scenario>") -> Scenario:
    """Parse and validate one scenario from YAML text; ``ScenarioError`` if it isn't valid."""
    try:
        root = yaml.compose(text, Loader=_ScenarioLoader)
        data = yaml.load(text, Loader=_ScenarioLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ScenarioError([Problem(path, line, column, f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(path, 1, 1, f"YAML error: {exc}")]) from None
    if root is None or not isinstance(data, dict):
        found = "an empty file" if root is None else f"a {type(data).__name__}"
        raise ScenarioError(
            [Problem(path, 1, 1, f"a scenario is a mapping (name:, duration:, ...); found {found}")]
        )
    try:
        # Strict: "yes", "on" or "5" are not booleans or numbers here; YAML already typed
        # every value, so a string where a number belongs is a mistake to report.
        scenario = Scenario.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = _one_union_member(root, exc.errors(include_url=False))
        problems = [_problem(path, root, error) for error in errors]
        raise ScenarioError(sorted(problems, key=lambda p: (p.line, p.column))) from None
    # The system's own settings models judge the ``system:`` overrides.
    from harness.stack import system_settings_problems

    unusable: list[Problem] = []
    for loc, message in system_settings_problems(scenario):
        key, value = _nodes_at(root, loc)
        mark = (key or value).start_mark
        where = ".".join(loc)
        unusable.append(Problem(path, mark.line + 1, mark.column + 1, f"{where}: {message}"))
    if unusable:
        raise ScenarioError(sorted(unusable, key=lambda p: (p.line, p.column)))
    return scenario


def load_file(path: Path | str) -> Scenario:
    """Read and validate one scenario file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(str(file), 1, 1, "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [Problem(str(file), 1, 1, f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]
        ) from None
    except OSError as exc:
        raise ScenarioError([Problem(str(file), 1, 1, f"can't read it: {exc.strerror}")]) from None
    return load_text(text, str(file))


def discover(paths: Iterable[Path | str]) -> list[Path]:
    """Scenario files under ``paths``: files as given, directories searched for *.yaml/*.yml."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            found.append(path)
    return found


# --- from a pydantic error to a position and a helpful message ----------------------------


_MEMBER_TAG = re.compile(r"[a-z][a-z_-]*\[.*\]")


def _is_member_tag(part: Any) -> bool:
    """A union member pydantic names in a location (``list[literal[...]]``), not a key.

    A key the file wrote with a bracket in it (``0[``) is not one: pydantic's names are a
    lower-case type name with its arguments in brackets."""
    return isinstance(part, str) and _MEMBER_TAG.fullmatch(part) is not None


def _one_union_member(root: yaml.Node, errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """For a value that matched no member of a union, keep the errors of the member whose
    shape the file has (a list for a list member, else the others), without the tags.

    pydantic reports every member's errors, named after its types: ``invariants.literal[
    'all','none']`` beside ``invariants.list[literal[...]].0`` is noise to a reader who
    wrote a list with one misspelt item.
    """
    kept: list[ErrorDetails] = []
    for error in errors:
        loc = tuple(error["loc"])
        # The last part of an unknown key's location is the key as the file wrote it,
        # whatever it looks like.
        last = len(loc) - 1 if error["type"] == "extra_forbidden" else len(loc)
        tags = [i for i, part in enumerate(loc[:last]) if _is_member_tag(part)]
        if not tags:
            kept.append(error)
            continue
        # Every union on the way is judged (a fault's kind list sits inside the fault's
        # target union), not only the outermost.
        if any(
            str(loc[i]).startswith("list[")
            != isinstance(_nodes_at(root, loc[:i])[1], yaml.SequenceNode)
            for i in tags
        ):
            continue
        # A fault's target tag stays: it says which kind of fault the keys belong to.
        kept.append(
            {
                **error,
                "loc": tuple(p for i, p in enumerate(loc) if i not in tags or _is_target(p)),
            }
        )
    return kept or errors


def _is_target(part: Any) -> bool:
    """The tag of a fault's member (``target[feed]``), named by the model's discriminator."""
    return isinstance(part, str) and part.startswith("target[") and part.endswith("]")


def _problem(path: str, root: yaml.Node, error: ErrorDetails) -> Problem:
    loc = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Misplaced):
        loc += cause.loc
    key, value = _nodes_at(root, loc)
    # Point at the value when it is the culprit (a wrong scalar); at the key when the key is
    # (an unknown key) or when the value is a whole block whose first line would mislead.
    scalar = isinstance(value, yaml.ScalarNode)
    culprit_is_key = error["type"] in ("extra_forbidden", "invalid_key")
    node = value if key is None or (scalar and not culprit_is_key) else key
    mark = node.start_mark
    where = ".".join(_key_text(part) for part in loc if not _is_target(part)) or "top level"
    quoted = scalar and getattr(value, "style", None) in ("'", '"')
    message = _message(error, loc, quoted=quoted)
    return Problem(path, mark.line + 1, mark.column + 1, f"{where}: {message}")


def _key_text(part: Any) -> str:
    """A location part as the file spells it: YAML's ``true`` key arrives as Python True."""
    if isinstance(part, bool):
        return "true" if part else "false"
    return str(part)


def _nodes_at(root: yaml.Node, loc: tuple[Any, ...]) -> tuple[yaml.Node | None, yaml.Node]:
    """The (key, value) nodes an error location points at, or the nearest enclosing ones.

    Locations may carry parts that are not in the file (a union's tag such as ``error``, a
    missing key); those are skipped, leaving the position on the enclosing block.
    """
    key: yaml.Node | None = None
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == _key_text(part)
                ),
                None,
            )
            if found is not None:
                key, node = found
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            key, node = None, node.value[part]
    return key, node


def _message(error: ErrorDetails, loc: tuple[Any, ...], *, quoted: bool = False) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(loc[:-1])
        hint = f"; valid keys here: {', '.join(valid)}" if valid else ""
        return f"unknown key {loc[-1]!r}{hint}"
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing"
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        return (
            f"{error['msg']} (got the number {error['input']!r}; put quotes around values "
            "that must stay text, e.g. codes: ['005930'])"
        )
    if kind in ("float_type", "int_type") and isinstance(error.get("input"), str):
        if quoted:
            return f"{error['msg']}, got the text {error['input']!r}; write numbers without quotes"
        # Unquoted but still text: YAML 1.2 reads 007, 1_000 and 0x10 as strings here.
        return (
            f"{error['msg']}, got {error['input']!r}, which reads as text; write a plain "
            "decimal number (no leading zeros, underscores or 0x)"
        )
    if kind == "invalid_key":
        return "keys are text; this one reads as a number or boolean (quote it if meant)"
    if kind == "bool_type":
        return f"expects true or false, got {error.get('input')!r}"
    if kind == "invalid_target" and not isinstance(error.get("input"), dict):
        return (
            "a fault is a mapping such as {target: broker, do: {kind: error}} "
            f"(target defaults to broker), not {type(error.get('input')).__name__} "
            f"{repr(error.get('input'))[:40]}"
        )
    if kind == "union_tag_not_found":
        kinds = _tags(loc)
        return f"needs a 'kind': one of {', '.join(kinds)}" if kinds else error["msg"]
    message = error["msg"]
    # pydantic prefixes model-validator errors with "Value error, "; the rest is ours.
    return message.removeprefix("Value error, ")


def _tags(loc: tuple[Any, ...]) -> list[str]:
    """The ``kind`` values the tagged union at ``loc`` accepts (e.g. the fault kinds)."""
    candidates = _annotations_at(loc)
    kinds = [
        model.model_fields["kind"].default
        for candidate in candidates
        for model in _models(candidate)
        if "kind" in model.model_fields
    ]
    return [str(kind) for kind in dict.fromkeys(kinds)]


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (aliases as written in YAML)."""
    keys: list[str] = []
    for candidate in _annotations_at(loc):
        for model in _models(candidate):
            keys += [f.alias or name for name, f in model.model_fields.items()]
    return sorted(dict.fromkeys(keys))


def _annotations_at(loc: tuple[Any, ...]) -> list[Any]:
    """The type annotations a value at ``loc`` may have, walking down from ``Scenario``."""
    candidates: list[Any] = [Scenario]
    for part in loc:
        if isinstance(part, int):
            continue
        if _is_target(part):  # only the fault models of that target
            target = part[len("target[") : -1]
            candidates = [
                model
                for candidate in candidates
                for model in _models(candidate)
                if "target" in model.model_fields
                and target in typing.get_args(model.model_fields["target"].annotation)
            ]
            continue
        next_candidates: list[Any] = []
        for candidate in candidates:
            for model in _models(candidate):
                field = next(
                    (f for name, f in model.model_fields.items() if part in (name, f.alias)),
                    None,
                )
                if field is not None:
                    next_candidates.append(field.annotation)
                else:  # a union member chosen by its tag, e.g. {kind: error}
                    kind = model.model_fields.get("kind")
                    if kind is not None and kind.default == part:
                        next_candidates.append(model)
        if next_candidates:
            candidates = next_candidates
    return candidates


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold: through Optional, list, Annotated, unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, dict):
        return [model for arg in typing.get_args(annotation) for model in _models(arg)]
    return []
