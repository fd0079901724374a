"""The storage errors: what they say, what they carry, and that no password leaks."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import asyncpg
import pytest

from system.storage import (
    ConnectionValidationError,
    DatabaseUnavailable,
    PoolClosedError,
    PoolConfig,
    PoolInitializationError,
    PoolStats,
    PoolTimeoutError,
    QueryTimeoutError,
    StorageError,
)
from system.storage.failures import (
    DRIVER_POOL_LOGGER,
    ERROR_TEXT_CHARS,
    classify,
    describe,
    initialization_error,
    mark_reported,
    shorten_driver_tracebacks,
)

SERVER = "db.test:5432/trading"


def test_pool_timeout_says_how_long_what_the_pool_held_and_what_to_do() -> None:
    stats = PoolStats(total=5, active=5, idle=0, waiting=12, max_size=5)
    error = PoolTimeoutError(server=SERVER, waited_s=2.0, stats=stats, retry_after_s=5.0)
    assert str(error) == (
        "no database connection free within 2.0 s at db.test:5432/trading "
        "(pool: 5 total, 5 active, 12 waiting); raise SQUALL_DB_MAX_SIZE or speed up slow queries"
    )
    assert error.stats is stats
    assert error.retry_after_s == 5.0
    assert isinstance(error, TimeoutError)
    assert isinstance(error, StorageError)


def test_unavailable_is_a_connection_error_that_says_when_to_retry() -> None:
    error = DatabaseUnavailable("gone", server=SERVER, retry_after_s=0.5)
    assert isinstance(error, ConnectionError)
    assert (error.retry_after_s, error.outcome_unknown) == (0.5, False)
    assert issubclass(ConnectionValidationError, DatabaseUnavailable)


def test_query_timeout_names_the_limit_and_the_variable() -> None:
    error = QueryTimeoutError(server=SERVER, timeout_s=0.25)
    assert "longer than 0.2 s" in str(error) or "longer than 0.3 s" in str(error)
    assert "SQUALL_DB_QUERY_TIMEOUT_S" in str(error)
    assert isinstance(error, TimeoutError)
    assert error.retry_after_s is None


def test_initialization_error_shows_the_masked_url_reason_and_suggestion() -> None:
    error = PoolInitializationError(
        url="postgresql://squall:***@db.test:5432/trading",
        server=SERVER,
        reason='InvalidCatalogNameError: database "trading" does not exist',
        suggestion="create the database",
    )
    assert str(error) == (
        "cannot open the database pool for postgresql://squall:***@db.test:5432/trading: "
        'InvalidCatalogNameError: database "trading" does not exist; create the database'
    )
    assert repr(error).startswith("PoolInitializationError('cannot open")


def test_closed_error_says_what_to_do() -> None:
    assert "create and start a new PoolManager" in str(PoolClosedError(server=SERVER))


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeoutError(
            server=SERVER,
            waited_s=1.0,
            stats=PoolStats(total=1, active=1, idle=0, waiting=1, max_size=1),
            retry_after_s=1.0,
        ),
        DatabaseUnavailable("lost", server=SERVER),
        QueryTimeoutError(server=SERVER, timeout_s=1.0),
        PoolClosedError(),
    ],
)
def test_errors_keep_their_message_as_their_only_argument(error: StorageError) -> None:
    # OSError subclasses (ConnectionError, TimeoutError) would otherwise read a second
    # argument as errno/strerror and print something else.
    assert str(error) == error.message
    assert error.args == (error.message,)


# -- telling driver errors apart (system.storage.failures) -----------------------------------

DSN = "postgresql://squall:pA55%40word@db.test:5432/trading"


def test_describe_scrubs_the_password_even_from_a_driver_message() -> None:
    leaky = ValueError("could not parse postgresql://squall:pA55@word@db.test")
    assert describe(leaky, DSN) == "ValueError: could not parse postgresql://squall:***@db.test"
    assert describe(ValueError("dsn=pA55%40word"), DSN) == "ValueError: dsn=***"
    assert describe(TimeoutError(), DSN) == "timed out"
    assert describe(ConnectionRefusedError(), DSN) == "ConnectionRefusedError"


def test_describe_cuts_a_long_message_after_scrubbing_it() -> None:
    # The password straddles the cut: scrubbed first, no part of it can survive the cut.
    long = ValueError("x" * (ERROR_TEXT_CHARS - 16) + "pA55@word" + "y" * 500)
    described = describe(long, DSN)
    assert len(described) == ERROR_TEXT_CHARS
    assert described.startswith("ValueError: xxx")
    assert described.endswith("…")  # a reader sees that something was cut
    assert "pA55" not in described
    assert describe(ValueError("no DSN to scrub")) == "ValueError: no DSN to scrub"


def test_describe_keeps_storages_own_errors_whole() -> None:
    # Their advice comes last; a cut would drop exactly the part that says what to do.
    advice = "retry in 2.0 s, and check that the server is running"
    error = DatabaseUnavailable(
        f"PostgreSQL at {SERVER} is unreachable ({'x' * ERROR_TEXT_CHARS}); {advice}",
        server=SERVER,
    )
    assert describe(error, DSN).endswith(advice)


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (
            asyncpg.exceptions.InvalidCatalogNameError('database "trading" does not exist'),
            'create the database (createdb "trading")',
        ),
        (
            asyncpg.exceptions.InvalidPasswordError("password authentication failed"),
            "check the user and password in SQUALL_DATABASE_URL",
        ),
        (TimeoutError(), "nothing answered within 10.0 s: is the server running and reachable"),
        (ConnectionRefusedError(111, "refused"), "listening on db.test:5432?"),
        (ValueError("invalid port"), "fix the URL: expected postgresql://"),
        (RuntimeError("something else"), "check host, port, database and user"),
    ],
)
def test_a_failed_start_comes_with_advice_for_its_cause(error: Exception, advice: str) -> None:
    failure = initialization_error(error, PoolConfig(url=DSN))
    assert advice in str(failure)
    assert str(failure).startswith(
        "cannot open the database pool for postgresql://squall:***@db.test:5432/trading: "
    )
    assert "pA55" not in str(failure)
    assert "pA55" not in repr(failure)


class _Conn:
    def __init__(self, *, closed: bool = False, detached: bool = False) -> None:
        self.closed, self.detached = closed, detached

    def is_closed(self) -> bool:
        if self.detached:
            raise asyncpg.InterfaceError("connection has been released back to the pool")
        return self.closed


@pytest.mark.parametrize(
    ("error", "conn", "failure"),
    [
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed"), _Conn(), "lost"),
        (asyncpg.exceptions.AdminShutdownError("terminating"), _Conn(), "lost"),
        (asyncpg.InterfaceError("released"), _Conn(detached=True), "lost"),
        (ConnectionResetError(), _Conn(closed=True), "lost"),
        (TimeoutError(), _Conn(), "timeout"),
        (asyncpg.exceptions.UniqueViolationError("dup"), _Conn(), "sql"),
        (asyncpg.exceptions.QueryCanceledError("canceled"), _Conn(), "sql"),
        # The caller's own errors, and ours, say nothing about the connection.
        (ValueError("caller's bug"), _Conn(), "other"),
        (ConnectionError("the broker, not the database"), _Conn(), "other"),
        (DatabaseUnavailable("already ours"), _Conn(closed=True), "other"),
    ],
)
def test_errors_leaving_a_connection_block_are_sorted(
    error: BaseException, conn: _Conn, failure: str
) -> None:
    assert classify(error, conn) == failure


@pytest.fixture
def driver_log() -> Iterator[logging.Logger]:
    """asyncpg's pool logger, its filters as they were put back afterwards."""
    driver = logging.getLogger(DRIVER_POOL_LOGGER)
    before = list(driver.filters)
    driver.filters = []
    try:
        yield driver
    finally:
        driver.filters = before


def test_asyncpg_logs_a_reported_failure_in_one_line_and_anything_else_in_full(
    driver_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    shorten_driver_tracebacks()
    shorten_driver_tracebacks()  # once is enough, however many pools start
    assert len(driver_log.filters) == 1
    reported = ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)")
    mark_reported(reported, f"could not connect to {SERVER} ({describe(reported)})")
    for error in (reported, RuntimeError("a bug in a connect hook")):
        try:
            raise error
        except Exception:  # as asyncpg's pool logs a failed floor connection
            driver_log.warning("Failed to restore the pool connection floor; %s", "retrying")
            driver_log.warning(
                "Failed to restore the pool connection floor; %s", "retrying", exc_info=True
            )
    plain, one_line, plain_bug, bug = caplog.records
    assert one_line.getMessage() == (
        "Failed to restore the pool connection floor; retrying — could not connect to "
        "db.test:5432/trading (ConnectionRefusedError: [Errno 111] Connect call failed "
        "('10.0.0.5', 5432))"
    )
    assert one_line.exc_info is None
    # Without a traceback to shorten, or of an error nobody reported, nothing changes.
    for record in (plain, plain_bug):
        assert record.getMessage() == "Failed to restore the pool connection floor; retrying"
    assert bug.exc_info is not None
    assert bug.exc_info[1] is not None
    assert str(bug.exc_info[1]) == "a bug in a connect hook"
    assert caplog.text.count("Traceback") == 1
