"""The load tier end to end, in ``nox -s load`` (where Locust is installed): Locust against
a real local stack (``squall up``), failing on its thresholds when the system misbehaves,
and never printing the operator token. The passing run is ``python -m load.local``, which
the session runs next."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from load.local import LocalStack, local_stack, run_locust


@pytest.fixture(scope="module")
def token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def stack(token: str) -> Iterator[LocalStack]:
    with local_stack(token, seed=3) as running:
        yield running


def _broker_url(stack: LocalStack) -> str:
    found = re.search(r"mock broker \(KIS REST\)\s+(\S+)", stack.log.read_text())
    assert found, f"squall up printed no mock broker URL; see {stack.log}"
    return found.group(1)


def test_quotes_the_broker_refuses_fail_the_run(stack: LocalStack, token: str) -> None:
    control = f"{_broker_url(stack)}/_squall/faults"
    rule = httpx.post(
        control,
        json={
            "where": {"path": "/uapi/*/quotations/*"},
            # A business refusal: the system gives up at once (422), where a 5xx would
            # be retried until the quote's deadline, past the end of a short run.
            "what": {"kind": "error", "code": "KIOK0560"},
        },
    )
    assert rule.status_code in (200, 201), rule.text
    try:
        run = run_locust(stack.host, token, users=8, duration_s=6, report="broken", capture=True)
    finally:
        httpx.delete(control)
    assert run.returncode == 1, run.stdout
    assert re.search(r"FAIL \d+ of \d+ requests failed", run.stdout), run.stdout
    assert "GET /api/quotes/[code]" in run.stdout
    assert token not in run.stdout


def test_a_p95_over_its_limit_fails_the_run(stack: LocalStack, token: str) -> None:
    run = run_locust(
        stack.host,
        token,
        users=4,
        duration_s=3,
        report="slow",
        env={"SQUALL_LOAD_P95_MS": "WS ping round trip=0.001"},
        capture=True,
    )
    assert run.returncode == 1, run.stdout
    assert "FAIL WS ping round trip: p95" in run.stdout
    assert "over its limit of 0 ms" in run.stdout
    assert token not in run.stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SQUALL_LOAD_SHAPE", "wave", "is not a load shape: use one of ramp, spike, soak"),
        ("SQUALL_LOAD_CODES", "5930", "must be KRX stock codes, six digits each"),
        ("SQUALL_LOAD_P95_MS", "GET /health", "is not NAME=MILLISECONDS"),
    ],
)
def test_a_wrong_setting_stops_the_run_before_it_starts(
    token: str, variable: str, value: str, says: str
) -> None:
    run = run_locust(
        "http://127.0.0.1:9", token, users=1, duration_s=1, env={variable: value}, capture=True
    )
    assert run.returncode == 1
    assert f"squall load: {variable}" in run.stdout
    assert says in run.stdout
    assert "Traceback" not in run.stdout
