"""The scenario files' JSON Schema, for editors (yaml-language-server) and other tools.

It is generated from the pydantic models, so it can't drift from what ``squall validate``
accepts for keys and types. Rules that span several keys (exactly one measure per
expectation, ``within`` with ``after``, ...) are checked only by ``squall validate``.
``docs/scenario.schema.json`` is this schema, written by ``squall schema``.
"""

from __future__ import annotations

from typing import Any

from harness.scenario.model import Scenario

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, keys as written in YAML (``for``, ``from``)."""
    schema = Scenario.model_json_schema(by_alias=True)
    _require_tags(schema)
    return {
        "$schema": SCHEMA_DIALECT,
        **schema,
        "title": "Squall scenario",
        "description": (
            "A Squall scenario file: the parts it needs, a timeline of faults, actions and "
            "workloads, and what must hold. Reference: docs/scenarios.md."
        ),
    }


def _require_tags(schema: dict[str, Any]) -> None:
    """Mark each tagged union's tag (``kind``) required, as the models require it.

    pydantic leaves ``kind`` optional because each member gives it a default, but a
    discriminated union needs it in the input: ``do: {seconds: 1}`` is refused.
    """
    definitions = schema.get("$defs", {})

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            discriminator = node.get("discriminator")
            if isinstance(discriminator, dict):
                tag = discriminator["propertyName"]
                for ref in discriminator.get("mapping", {}).values():
                    member = definitions[ref.removeprefix("#/$defs/")]
                    member["required"] = sorted({*member.get("required", []), tag})
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
