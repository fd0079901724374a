"""Writing the table into a README between its markers, leaving the rest as it is."""

from __future__ import annotations

from pathlib import Path

START = "<!-- reliability:start -->"
END = "<!-- reliability:end -->"


class ReadmeError(Exception):
    """The README cannot take the table: the message says why and what to add."""


def replace_section(text: str, table: str, *, where: str = "README") -> str:
    """``text`` with everything between the markers replaced by ``table``."""
    starts, ends = text.count(START), text.count(END)
    if starts != 1 or ends != 1:
        raise ReadmeError(
            f"{where} needs exactly one {START} and one {END} line around the reliability "
            f"table (found {starts} and {ends}); add them under its '## Reliability' heading"
        )
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)  # the old table
    if END in head:
        raise ReadmeError(f"{where}: {END} comes before {START}; put the start marker first")
    return f"{head}{START}\n{table.strip()}\n{END}{tail}"


def check_section(path: Path) -> None:
    """Raise ``ReadmeError`` now if the README at ``path`` could not take the table: said
    before the scenarios run, not after."""
    replace_section(_read(path), "", where=str(path))


def write_section(path: Path, table: str) -> bool:
    """Put ``table`` into the README at ``path``; whether the file changed."""
    text = _read(path)
    updated = replace_section(text, table, where=str(path))
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReadmeError(f"{path}: no such file; name the README to update") from None
