"""What a start-up scenario reads of its command: exit status, output, secrets; and the
storage settings it hands the system as variables."""

from __future__ import annotations

from harness.expect import Evidence, check
from harness.invariants import secrets_not_printed
from harness.result import Launched
from harness.scenario import load_text
from harness.startup import storage_environment

SECRET = "pw-" + "7" * 24
SCENARIO = load_text(
    "name: x\nduration: 20\nclock: real\nstart: {command: mock broker, taken: --port}\n"
    "expect:\n"
    "  - {exit_status: 2}\n"
    "  - {output: 'listen on 127.0.0.1:{port}: taken', at_least: 1}\n"
    "  - {output: Traceback, equals: 0}\n",
    "test.yaml",
)


def launched(output: str, status: int | None = 2) -> Launched:
    return Launched(
        argv=("squall",),
        status=status,
        output=output,
        seconds=0.5 if status is not None else 20.0,
        deadline=20.0,
        port=8123,
        secrets={"the database password": SECRET},
    )


def verdicts(run: Launched) -> list[tuple[bool, str]]:
    evidence = Evidence(duration=20.0, journal=[], calls=[], samples=[], launched=run)
    return [
        (c.passed, c.observed)
        for c in (check(SCENARIO, e, evidence, None, "expectation") for e in SCENARIO.expect)
    ]


def test_status_and_output_are_read_with_the_port_filled_in_and_wrapping_ignored() -> None:
    # A terminal wrapped the message: whitespace runs read as one space.
    run = launched("error: cannot listen on\n   127.0.0.1:8123:   taken\n")
    assert verdicts(run) == [
        (True, "exited with status 2 after 0.5 s"),
        (True, "said 'listen on 127.0.0.1:8123: taken' 1 time(s)"),
        (True, "said 'Traceback' 0 time(s)"),
    ]


def test_a_command_still_running_at_the_deadline_fails_its_exit_status() -> None:
    passed, observed = verdicts(launched("serving", status=None))[0]
    assert (passed, observed) == (False, "still running after 20 s; stopped")


def test_a_wrong_status_and_a_missing_message_quote_the_end_of_the_output() -> None:
    results = verdicts(launched("Traceback (most recent call last): boom", status=1))
    assert results[0] == (False, "exited with status 1 after 0.5 s")
    assert results[1] == (
        False,
        "said 'listen on 127.0.0.1:8123: taken' 0 time(s); it printed: "
        "Traceback (most recent call last): boom",
    )
    assert results[2][0] is False


def test_a_secret_is_caught_even_folded_over_two_lines_and_never_quoted() -> None:
    folded = f"postgresql://squall:{SECRET[:10]}\n{SECRET[10:]}@127.0.0.1"
    run = launched(folded, status=1)
    verdict = secrets_not_printed(run)
    assert not verdict.passed
    assert verdict.observed == "the output holds the database password (1 time(s))"
    observed = verdicts(run)[1][1]
    assert observed.endswith("it printed: (withheld: it holds a secret)")
    assert SECRET[:10] not in observed


def test_no_secret_in_the_output_passes_and_names_what_was_watched() -> None:
    verdict = secrets_not_printed(launched("postgresql://squall:***@127.0.0.1"))
    assert verdict.passed
    assert verdict.observed == "none of the secrets it was given (the database password)"


def test_storage_overrides_become_the_variables_the_system_reads() -> None:
    env = storage_environment(
        {"pool": {"connect_timeout_s": 3, "max_size": 5}, "transactional": False}
    )
    assert env == {
        "SQUALL_DB_CONNECT_TIMEOUT_S": "3",
        "SQUALL_DB_MAX_SIZE": "5",
        "SQUALL_STORAGE_TRANSACTIONAL": "false",
    }
