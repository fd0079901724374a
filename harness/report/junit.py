"""JUnit XML for CI: one test case per scenario, failed checks as the failure text.

The layout is the one pytest writes (``<testsuites>`` around one ``<testsuite>``), which
Jenkins, GitLab, GitHub test reporters and Azure all read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from os import PathLike
from pathlib import Path, PurePosixPath

from harness.report.common import failure_message, verdict
from harness.result import Check, ScenarioResult

# XML 1.0 cannot carry most control characters, even escaped; a stray one in an observed
# value (a truncated broker answer, say) would make the whole file unreadable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _classname(path: str) -> str:
    """``scenarios.<dir>``: the scenario file's folder under ``scenarios/``, dotted."""
    parts = list(PurePosixPath(path.replace("\\", "/")).parent.parts)
    if "scenarios" in parts:
        parts = parts[len(parts) - parts[::-1].index("scenarios") :]
    else:
        parts = parts[-1:]
    # Dots would split the class name into packages that do not exist.
    parts = [part.replace(".", "_") for part in parts if part not in ("", "/")]
    return ".".join(["scenarios", *parts])


def _check_line(check: Check) -> str:
    line = f"- {check.description}: {check.observed}"
    return f"{line} ({check.where})" if check.where else line


def _testcase(suite: ET.Element, result: ScenarioResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_classname(result.path),
        name=_clean(result.name),
        time=f"{result.wall_seconds:.3f}",
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("seed", str(result.seed)),
        ("clock", result.clock),
        ("simulated_seconds", f"{result.simulated_seconds:.3f}"),
        ("journal_digest", result.journal_digest),
    ):
        ET.SubElement(properties, "property", name=name, value=_clean(value))

    failed_lines = "\n".join(_check_line(check) for check in result.failed_checks)
    outcome = verdict(result)
    if outcome == "ERROR":
        error = result.error or ""
        first_line = error.strip().splitlines()[0] if error.strip() else "the run broke"
        element = ET.SubElement(case, "error", message=_clean(first_line), type="ScenarioError")
        element.text = _clean(error if not failed_lines else f"{error}\n\n{failed_lines}")
    elif outcome == "FAIL":
        element = ET.SubElement(case, "failure", message=failure_message(result))
        element.text = _clean(failed_lines or failure_message(result))


def write_junit(
    results: list[ScenarioResult], path: str | PathLike[str], suite_name: str = "squall"
) -> None:
    counts = {
        "tests": str(len(results)),
        "failures": str(sum(1 for result in results if verdict(result) == "FAIL")),
        "errors": str(sum(1 for result in results if verdict(result) == "ERROR")),
        "skipped": "0",
        "time": f"{sum(result.wall_seconds for result in results):.3f}",
    }
    root = ET.Element("testsuites", {"name": suite_name, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, **counts})
    for result in results:
        _testcase(suite, result)
    ET.indent(root)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
