"""The ``--report-json`` file: every scenario's verdicts and figures, for scripts to read."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

from harness.result import ScenarioResult


def write_json(results: list[ScenarioResult], path: str | PathLike[str]) -> None:
    document = {
        "scenarios": [result.to_json() for result in results],
        "passed": all(result.passed for result in results),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
