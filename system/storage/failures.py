"""Telling failures apart, and saying what they mean, without leaking the password.

The pool manager asks two questions of every error: did it cost us the connection (or the
server), and how should a message describe it? ``classify`` answers the first for errors
leaving a connection block; ``UNREACHABLE_ERRORS`` the same for a connection attempt
(nobody listening, as opposed to a server that answered "no"); ``describe`` gives
``Type: message`` with the password scrubbed out; ``initialization_error`` turns a failed
``start()`` into advice. ``mark_reported`` and ``shorten_driver_tracebacks`` keep a failure
the pool manager has already reported from being logged again by asyncpg as a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import asyncpg

from system.storage.config import PoolConfig
from system.storage.errors import PoolInitializationError, StorageError

# asyncpg ships no type information: a connection handed out by the pool (a proxy of
# ``asyncpg.Connection``) is ``Any`` to mypy.
Connection = Any

Failure = Literal["lost", "timeout", "sql", "other"]

# Errors that mean the connection (or the server behind it) is gone, whatever was running.
LOST_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.AdminShutdownError,  # 57P01: pg_terminate_backend, fast shutdown
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.IdleSessionTimeoutError,  # 57P05
)
# Errors of a connection attempt that mean nobody usable is listening there (as opposed to
# a server that answered "no": a wrong password, an unknown database, too many clients).
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (OSError, *LOST_ERRORS)
# Error texts go into messages, logs and health reasons; a driver's novel-length error must not.
ERROR_TEXT_CHARS = 200
# Errors of a connection attempt that say something about the server or the network (it is
# away, or it answered "no"), as opposed to a bug: once reported, a traceback adds nothing.
EXPECTED_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    *UNREACHABLE_ERRORS,
    asyncpg.PostgresError,
)
# The logger asyncpg's pool warns on, with a traceback, each time it fails to reopen the
# connections it keeps at ``min_size`` ("Failed to restore the pool connection floor").
DRIVER_POOL_LOGGER = "asyncpg.pool"
# Where ``mark_reported`` leaves its one-line account on the exception. Exceptions take no
# weak references, so a registry beside them could not forget them; an attribute lives
# exactly as long as the exception does.
_REPORTED_AS = "_squall_reported_as"


def gone(conn: Connection) -> bool:
    """Whether ``conn`` can no longer be used: closed, or detached by asyncpg after a loss."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # "released back to the pool": asyncpg saw it die
        return True


def terminate(conn: Connection) -> None:
    """Close ``conn`` at once, without waiting for a server that may not be listening to
    close its end (asyncpg still sends it Terminate, in case it is)."""
    with contextlib.suppress(asyncpg.InterfaceError):  # already detached: nothing to do
        conn.terminate()


def connection_lost(exc: BaseException, conn: Connection) -> bool:
    """Whether ``exc``, raised by a statement on ``conn``, means the connection is gone."""
    return classify(exc, conn) == "lost"


def classify(exc: BaseException, conn: Connection) -> Failure:
    """What an error leaving a connection block says about the connection and the server."""
    if isinstance(exc, StorageError):  # already ours, e.g. from a nested call
        return "other"
    if isinstance(exc, LOST_ERRORS):
        return "lost"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError) and gone(conn):
        return "lost"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncpg.PostgresError):
        return "sql"
    return "other"


def mark_reported(exc: BaseException, account: str) -> None:
    """Note that ``exc`` has been reported (health state, log) as ``account``, one line
    that names the server: if asyncpg logs it too, it logs that line, not a traceback."""
    setattr(exc, _REPORTED_AS, account)


class _ReportedInOneLine(logging.Filter):
    """Turns a driver's log record of a failure already reported into one line: its own
    message and the account, without the traceback. Records of any other exception, or
    of none, pass unchanged, so an unexpected error still shows where it came from."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        account = getattr(exc, _REPORTED_AS, None)
        if isinstance(account, str):
            record.msg = f"{record.getMessage()} — {account}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def shorten_driver_tracebacks() -> None:
    """Make asyncpg's pool log failures ``mark_reported`` has seen in one line (idempotent).

    While the server is down, asyncpg retries its connection floor and logs every failed
    attempt with a full traceback, though the pool manager's connect hook has already
    reported it: the health state says the server cannot be reached and why, and its change
    was logged. The traceback would only bury that, retry after retry.
    """
    driver = logging.getLogger(DRIVER_POOL_LOGGER)
    if not any(isinstance(existing, _ReportedInOneLine) for existing in driver.filters):
        driver.addFilter(_ReportedInOneLine())


def describe(exc: BaseException, dsn: str | None = None) -> str:
    """``Type: message`` of an error for messages, logs and health reasons: the ``dsn``'s
    password scrubbed out of it, then a driver's text cut to ``ERROR_TEXT_CHARS`` and marked
    with "…" (scrubbing first, so no cut can leave part of the password behind).

    Storage's own errors are not cut: they are written to be read whole, and their last
    words say what to do ("retry in 2.0 s, and check that the server is running")."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    text = str(exc).strip()
    for password in _passwords(dsn):
        text = text.replace(password, "***")
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, StorageError) or len(described) <= ERROR_TEXT_CHARS:
        return described
    return described[: ERROR_TEXT_CHARS - 1] + "…"


def _passwords(dsn: str | None) -> list[str]:
    """The DSN's password as written and percent-decoded (a message may quote either)."""
    if not dsn:
        return []
    try:
        raw = urlsplit(dsn).password
    except ValueError:
        return []
    return sorted({raw, unquote(raw)}, key=len, reverse=True) if raw else []


def initialization_error(exc: BaseException, config: PoolConfig) -> PoolInitializationError:
    """Why ``start()`` failed, with what to check next."""
    host_port, _, database = config.server.rpartition("/")
    errors = asyncpg.exceptions
    if isinstance(exc, errors.InvalidCatalogNameError):
        suggestion = (
            f'create the database (createdb "{database}") or fix the database name in '
            "SQUALL_DATABASE_URL"
        )
    elif isinstance(
        exc, errors.InvalidPasswordError | errors.InvalidAuthorizationSpecificationError
    ):
        suggestion = (
            "check the user and password in SQUALL_DATABASE_URL, and the server's pg_hba.conf"
        )
    elif isinstance(exc, TimeoutError):
        suggestion = (
            f"nothing answered within {config.connect_timeout_s:.1f} s: is the server running "
            f"and reachable at {host_port}? (raise SQUALL_DB_CONNECT_TIMEOUT_S for a slow "
            "network)"
        )
    elif isinstance(exc, UNREACHABLE_ERRORS):
        suggestion = f"is the server running and listening on {host_port}? check the host and port"
    elif isinstance(exc, ValueError | asyncpg.InterfaceError):
        suggestion = "fix the URL: expected postgresql://user:password@host:port/database"
    else:
        suggestion = "check host, port, database and user; is the server running?"
    return PoolInitializationError(
        url=config.redacted_url,
        server=config.server,
        reason=describe(exc, config.dsn),
        suggestion=suggestion,
    )
