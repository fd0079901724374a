"""redact_url (system.storage; harness.postgres uses the same one): passwords never reach a
message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from system.storage import redact_url as system_redact

REDACTORS = [pytest.param(system_redact, id="system")]


@pytest.mark.parametrize("redact", REDACTORS)
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u:s%40cret@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?password=secret&x=1", "postgresql://u@h/db?password=***&x=1"),
    ],
)
def test_the_password_is_masked(redact: Callable[[str], str], url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize("redact", REDACTORS)
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@ss/w0rd#@h:5432/db",  # unencoded '@', '/' and '#' in the password
        "postgresql://u:secret@h:notaport/db",
    ],
)
def test_odd_urls_are_over_redacted_rather_than_leaked(
    redact: Callable[[str], str], url: str
) -> None:
    redacted = redact(url)
    assert "secret" not in redacted
    assert "ss/w0rd" not in redacted
    assert redacted.startswith("postgresql://u:***@")


def test_a_keyword_dsn_loses_its_password_too() -> None:
    assert system_redact("host=h user=u password=secret dbname=d") == (
        "host=h user=u password=*** dbname=d"
    )
