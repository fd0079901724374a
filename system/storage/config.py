"""How to reach PostgreSQL, and the knobs of the pool manager's policy: ``PoolConfig``.

``PoolConfig.from_env()`` reads the DSN from ``SQUALL_DATABASE_URL`` (falling back to the
conventional ``DATABASE_URL``) and the numbers from ``SQUALL_DB_*`` (``SQUALL_DB_MAX_SIZE``,
``SQUALL_DB_ACQUIRE_TIMEOUT_S``, …). Times are seconds of loop time.

The DSN holds the password, so it is a ``SecretStr``, and nothing here ever prints it:
``redact_url()`` is what messages show instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from system.broker.settings import SettingsError

URL_VARIABLES = ("SQUALL_DATABASE_URL", "DATABASE_URL")
ENV_PREFIX = "SQUALL_DB_"
_SCHEMES = ("postgresql://", "postgres://")
_EXAMPLE_URL = "postgresql://squall:PASSWORD@127.0.0.1:5432/squall"

M = TypeVar("M", bound=BaseModel)

# libpq also takes the password as a query parameter (``?password=…``).
_QUERY_PASSWORD = re.compile(r"(?i)(\bpassword=)[^&#\s]*")
# A key/value DSN (``host=… password=…``), which asyncpg does not take but people paste.
_KEYWORD_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: safe for logs and error messages.

    Made to over-redact rather than leak: an unencoded ``@`` or ``/`` in a password still
    ends up inside the masked part, because userinfo is taken to run to the *last* ``@``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    userinfo, at, hostpart = rest.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.partition(":")[0]
        rest = f"{user}:***@{hostpart}"
    return _QUERY_PASSWORD.sub(r"\1***", f"{scheme}://{rest}")


def describe_server(url: str) -> str:
    """``host:port/database`` of a DSN (libpq's defaults filled in): where an error happened."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:  # e.g. a non-numeric port; the redacted URL is the best we can say
        return redact_url(url)
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"{host}:{port}/{database}"


class PoolConfig(BaseModel):
    """The pool manager's settings (strict, frozen; ``url`` never printed)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", hide_input_in_errors=True)

    url: SecretStr = Field(description=f"The DSN, e.g. {_EXAMPLE_URL}")
    min_size: int = Field(
        default=1,
        ge=0,
        description="Connections kept open while idle (the pool's floor); also opened at start",
    )
    max_size: int = Field(default=10, ge=1, description="Connections open at most")
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Opening one connection (TCP, TLS, auth) may take this"
    )
    acquire_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a caller waits for a free connection before PoolTimeoutError",
    )
    query_timeout_s: float = Field(
        default=5.0, gt=0, description="One statement may run this long before it is cancelled"
    )
    validate_idle_after_s: float = Field(
        default=5.0,
        ge=0,
        description="A connection idle longer than this is checked with SELECT 1 before it is "
        "handed out (0: check every time). A connection that failed the check is discarded.",
    )
    probe_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="A liveness check (the health probe's connect + SELECT 1, or an idle "
        "connection's SELECT 1) failing for this long counts as failed: it bounds how long a "
        "silently unreachable server takes to be reported unhealthy",
    )
    probe_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="While healthy, probe the server this often when nothing else has shown "
        "it reachable since the last look (traffic that succeeded counts), so an idle system "
        "notices an outage (0: probe only after a failure)",
    )
    reconnect_backoff_base_s: float = Field(
        default=0.25,
        gt=0,  # 0 would probe a down server in a hot loop
        description="While the server is down, the first probe waits 50-100 % of this; each "
        "failed probe doubles it",
    )
    reconnect_backoff_max_s: float = Field(
        default=5.0, gt=0, description="The longest wait between probes of a down server"
    )
    error_window_s: float = Field(
        default=5.0,
        gt=0,
        description="After a failed operation or an outage, health stays degraded this long",
    )
    close_timeout_s: float = Field(
        default=10.0,
        ge=0,
        description="close() waits this long for connections in use to be released, then "
        "terminates them",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(_SCHEMES):
            # Never echo the value: it is likely to hold the password.
            raise ValueError(
                f"url must start with postgresql:// or postgres://, e.g. {_EXAMPLE_URL}"
            )
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> PoolConfig:
        if self.min_size > self.max_size:
            raise ValueError(
                f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})"
            )
        if self.reconnect_backoff_max_s < self.reconnect_backoff_base_s:
            raise ValueError(
                f"reconnect_backoff_max_s ({self.reconnect_backoff_max_s}) must not be below "
                f"reconnect_backoff_base_s ({self.reconnect_backoff_base_s})"
            )
        return self

    @property
    def dsn(self) -> str:
        """The DSN itself, for the driver only: never log it (use ``redacted_url``)."""
        return self.url.get_secret_value()

    @property
    def redacted_url(self) -> str:
        """The DSN with its password replaced by ``***``."""
        return redact_url(self.dsn)

    @property
    def server(self) -> str:
        """``host:port/database``: where errors say they happened."""
        return describe_server(self.dsn)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PoolConfig:
        """Read ``SQUALL_DATABASE_URL`` (else ``DATABASE_URL``) and ``SQUALL_DB_{FIELD}``.

        Empty variables count as unset. A ``SettingsError`` names the variable at fault and
        never its value.
        """
        env = os.environ if environ is None else environ
        url_variable = database_url_variable(env)
        if url_variable is None:
            raise SettingsError(
                f"missing environment variable {URL_VARIABLES[0]} (or {URL_VARIABLES[1]}): set "
                f"it to the PostgreSQL DSN, e.g. {URL_VARIABLES[0]}={_EXAMPLE_URL}"
            )
        return model_from_env(
            cls,
            env,
            prefix=ENV_PREFIX,
            what="database",
            given={"url": env[url_variable].strip()},
            variables={"url": url_variable},
        )


def database_url_variable(environ: Mapping[str, str]) -> str | None:
    """The variable the DSN is read from: ``SQUALL_DATABASE_URL``, else ``DATABASE_URL``
    (None when both are unset or blank: the system runs without a database)."""
    return next((name for name in URL_VARIABLES if environ.get(name, "").strip()), None)


def model_from_env(
    model: type[M],
    environ: Mapping[str, str],
    *,
    prefix: str,
    what: str,
    given: Mapping[str, object],
    variables: Mapping[str, str] | None = None,
) -> M:
    """``model`` from the ``given`` fields plus ``{prefix}{FIELD}`` for each of the others.

    ``system.broker.settings.settings_from_env`` for the storage's models, which it cannot
    serve as it stands: they are strict (it validates strictly, so every number read from
    the environment would be refused) and take fields that come from elsewhere (``given``:
    the DSN's variable, the pool's own settings).

    Empty variables count as unset. Environment values are strings, so they are validated
    leniently: the storage models are strict for Python callers only. A ``SettingsError``
    (``invalid {what} settings in the environment: ...``) names the variable at fault
    (``variables`` maps a given field to the variable it came from) and never its value.
    """
    values = dict(given)
    for name in model.model_fields:
        raw = environ.get(f"{prefix}{name.upper()}", "").strip()
        if raw and name not in given:
            values[name] = raw
    try:
        return model.model_validate(values, strict=False)
    except ValidationError as exc:
        named = variables or {}

        def variable(loc: tuple[int | str, ...]) -> str:
            if not loc:  # a check across fields has no single variable to name
                return f"{prefix}*"
            field = str(loc[0])
            return named.get(field, f"{prefix}{field.upper()}")

        problems = "; ".join(
            f"{variable(error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(f"invalid {what} settings in the environment: {problems}") from None
