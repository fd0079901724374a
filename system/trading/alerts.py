"""Telling people what the trading core did: ``Alert``, ``AlertNotifier``, ``AlertSettings``.

Every halt, kill switch, release and execution problem is *alerted*: a log line at once,
and a JSON POST to a webhook (Slack, PagerDuty, an incident bot) when one is configured.

**Alerting never blocks trading.** ``AlertNotifier.notify`` writes the log line and queues
the webhook delivery, then returns; it never waits for the network. One background task
delivers the queue in order. A webhook that is slow, down or hanging delays only later
alerts' deliveries, never the caller, and the log line (the record that cannot fail) has
already been written.

**Retries.** A 5xx, a 429, a timeout or a connection error is retried after a jittered
exponential backoff (``system.broker.backoff.jittered_backoff``, on the loop's clock, so a
scenario on virtual time waits no wall time), up to ``max_attempts`` attempts; then the
alert is given up and counted (``alerts_failed``). Every attempt carries the header
``Idempotency-Key: <alert_id>``: a POST that reached the webhook but whose answer was lost
is retried too, and the key lets the receiver drop the duplicate. Any other answer outside
2xx (400, 401, 404, a redirect) says the request itself is wrong, so it is not retried
(``alerts_rejected``): repeating it would only delay the alerts behind it.

**Bounded.** At most ``queue_size`` alerts wait (besides the one being delivered). A full
queue drops its oldest waiting alert to make room (``alerts_dropped``): during an alert
storm against a dead webhook the newest alerts say most about the present, and the log
already holds every one.

**Secrets.** A webhook URL usually carries its credential in the path or the query
(``https://hooks.slack.com/services/T000/B000/XXXX``). It is a ``SecretStr`` in the
settings, and logs show only ``scheme://host[:port]`` (``webhook_origin``), including
httpx's own request log line, which would otherwise print the whole URL.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from system.broker.account import tls_context
from system.broker.backoff import jittered_backoff
from system.broker.settings import settings_from_env
from system.lifecycle import Lifecycle

log = logging.getLogger(__name__)

ENV_PREFIX = "SQUALL_ALERT_"

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
_LOG_LEVELS: dict[str, int] = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "critical": logging.CRITICAL,
}

_METRIC_NAMES: tuple[str, ...] = (
    "alerts_sent",
    "alerts_delivered",
    "alerts_retried",
    "alerts_failed",
    "alerts_rejected",
    "alerts_dropped",
    "alerts_pending",
)

# httpx logs every request at INFO on this logger, with the full URL.
_HTTPX_LOGGER = "httpx"
_UNPARSEABLE = "<unparseable webhook URL>"


def metric_names() -> tuple[str, ...]:
    """Every name ``AlertNotifier.metrics()`` reports, known without a notifier: what
    ``/metrics`` shows of it and a scenario's ``metric:`` may name."""
    return _METRIC_NAMES


def webhook_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: all of a webhook URL that logs may show.

    The path and query (where webhook tokens live) and any ``user:password@`` are left
    out. ``system.storage.redact_url`` is not enough here: it masks only a password.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # e.g. a non-numeric port
        return _UNPARSEABLE
    if not parts.scheme or not host:
        return _UNPARSEABLE
    if ":" in host:  # IPv6 literals keep their brackets
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" if port is None else f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One thing a person must hear about.

    - ``category``: what kind of event, e.g. ``"halt"``, ``"kill-switch"``, ``"release"``,
      ``"execution"``.
    - ``severity``: ``"info"``, ``"warning"`` or ``"critical"``; also the log level.
    - ``title``, ``message``: one line for a pager, then the reason.
    - ``details``: further facts as strings (``{"reason": "daily-loss", "limit": "..."}``).
    - ``at``: when it happened, in seconds of loop time (``loop.time()``).
    - ``alert_id``: stable identity, sent as the webhook's ``Idempotency-Key``. Left empty,
      it is derived from category, at, title and message, never drawn at random, so a
      seeded scenario run produces the same ids every time, and the same alert raised
      twice is delivered once.
    """

    category: str
    severity: Severity
    title: str
    message: str
    at: float
    # hash=False: a dict is unhashable; the other fields identify an alert well enough.
    details: Mapping[str, str] = field(default_factory=dict, hash=False)
    alert_id: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"alert severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}"
            )
        if not self.category:
            raise ValueError('alert category must not be empty, e.g. "halt"')
        # A private copy: the caller reusing its dict must not rewrite a queued alert.
        object.__setattr__(self, "details", dict(self.details))
        if not self.alert_id:
            object.__setattr__(self, "alert_id", derive_alert_id(self))

    def payload(self) -> dict[str, object]:
        """The webhook's JSON body."""
        return {
            "alert_id": self.alert_id,
            "category": self.category,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "details": dict(self.details),
            "at": self.at,
        }


def derive_alert_id(alert: Alert) -> str:
    """``{category}-{16 hex digits}`` from the alert's category, ``at``, title and message."""
    # repr() of a float round-trips exactly, so equal times always give equal ids.
    key = "\x1f".join((alert.category, repr(alert.at), alert.title, alert.message))
    return f"{alert.category}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


class AlertSettings(BaseModel):
    """The notifier's settings (frozen; ``webhook_url`` never printed). Times are seconds
    of loop time. ``AlertSettings.from_env()`` reads ``SQUALL_ALERT_{FIELD}``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    webhook_url: SecretStr | None = Field(
        default=None,
        description="Where alerts are POSTed as JSON, e.g. https://hooks.example.com/T0/B0/XXXX. "
        "Unset: alerts are only logged. Secret: it usually carries a token.",
    )
    timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="One delivery attempt (connect, send, answer) may take this long in all; "
        "then it counts as failed and is retried",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="Attempts per alert (the first included) before it is given up",
    )
    backoff_base_s: float = Field(
        default=1.0,
        gt=0,  # 0 would retry a failing webhook in a hot loop
        description="The first retry waits 50-100 % of this; each further retry doubles it",
    )
    backoff_max_s: float = Field(
        default=30.0,
        gt=0,
        description="The longest wait between attempts (a Retry-After is honoured up to it)",
    )
    queue_size: int = Field(
        default=1000,
        ge=1,
        description="Alerts waiting for delivery at most; beyond, the oldest is dropped "
        "(it has been logged all the same)",
    )
    close_timeout_s: float = Field(
        default=5.0,
        ge=0,
        description="Closing the notifier waits this long for queued alerts to be delivered; "
        "what is left is logged as undelivered",
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if not url:
            return None
        # Never echo the value: the token is in it.
        if not url.startswith(("http://", "https://")) or webhook_origin(url) == _UNPARSEABLE:
            raise ValueError(
                "webhook_url must be an http:// or https:// URL with a host, e.g. "
                "https://hooks.example.com/services/T0/B0/XXXX"
            )
        return SecretStr(url)

    # A field validator, not a model one: its error then names the field, and so the
    # environment variable settings_from_env reports.
    @field_validator("backoff_max_s")
    @classmethod
    def _check_backoff_max(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("backoff_base_s")
        if base is not None and value < base:
            raise ValueError(f"must not be below backoff_base_s ({base})")
        return value

    @property
    def webhook_origin(self) -> str | None:
        """``scheme://host[:port]`` of the webhook (None without one): safe to log."""
        if self.webhook_url is None:
            return None
        return webhook_origin(self.webhook_url.get_secret_value())

    @classmethod
    def from_env(
        cls, prefix: str = ENV_PREFIX, environ: Mapping[str, str] | None = None
    ) -> AlertSettings:
        """Read ``{prefix}{FIELD}`` variables, e.g. ``SQUALL_ALERT_WEBHOOK_URL``.

        Every field has a default (no webhook: log only). Empty variables count as unset;
        a ``SettingsError`` names the variable at fault, never its value.
        """
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the alert notifier",
            example=f"{prefix}WEBHOOK_URL=https://hooks.example.com/services/T0/B0/XXXX, "
            f"{prefix}MAX_ATTEMPTS=5",
        )


Outcome = Literal["delivered", "retry", "rejected"]


def classify(status_code: int) -> Outcome:
    """What a webhook's HTTP status means for the alert.

    2xx: delivered. 429 and 5xx: the receiver is busy or broken for now, so retry. Anything
    else (4xx, a redirect) says the request is wrong: a retry would be refused the same way.
    """
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 429 or status_code >= 500:
        return "retry"
    return "rejected"


def retry_after_s(response: httpx.Response) -> float | None:
    """The delay-seconds form of a ``Retry-After`` header, if the answer has one.

    The HTTP-date form is ignored (the backoff applies): reading it needs the wall clock,
    which would not follow a scenario's virtual time.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass
class _Attempt:
    outcome: Outcome
    reason: str  # what happened, for the log: "answered 503 Service Unavailable", ...
    retry_after_s: float | None = None


class _HideWebhookUrl(logging.Filter):
    """Shows httpx's request log line with the webhook's origin instead of its URL.

    httpx logs ``HTTP Request: POST <full URL> "HTTP/1.1 200 OK"`` at INFO: with the
    service's logging at INFO that would write the webhook's token into every log.
    """

    def __init__(self, url: str, shown: str) -> None:
        super().__init__()
        self._url = httpx.URL(url)
        self._shown = shown

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, httpx.URL) and arg == self._url for arg in record.args
        ):
            record.args = tuple(
                self._shown if isinstance(arg, httpx.URL) and arg == self._url else arg
                for arg in record.args
            )
        return True


class AlertNotifier(Lifecycle):
    """Logs every alert at once and delivers it to the webhook in the background.

    Use ``async with AlertNotifier(settings) as notifier`` (or ``start()`` and
    ``aclose()``); call ``notify`` from the event loop's thread. ``notify`` also works
    before ``start``: alerts then wait for it. ``transport`` is the test seam (respx, an
    ASGI app); seed ``rng`` to make the retry jitter repeatable.

    Without ``settings.webhook_url`` no HTTP client or task is made: alerts are only logged.
    """

    def __init__(
        self,
        settings: AlertSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._url = (
            None if settings.webhook_url is None else settings.webhook_url.get_secret_value()
        )
        self._origin = settings.webhook_origin or "no webhook"
        self._shown_url = f"{self._origin}/***"  # the webhook URL as logs may show it
        self._http: httpx.AsyncClient | None = None
        self._log_filter: _HideWebhookUrl | None = None
        if self._url is not None:
            self._http = httpx.AsyncClient(
                transport=transport,
                # httpx bounds each phase (connect, each read); the attempt's total is
                # bounded by asyncio.timeout in _attempt, so a trickling answer is cut too.
                timeout=httpx.Timeout(settings.timeout_s),
                # A redirect is answered as "rejected": following it could carry the
                # alert, and the Idempotency-Key, somewhere nobody configured.
                follow_redirects=False,
                headers={"User-Agent": "squall-alerts"},
                # The broker client's TLS context, built once per process: loading the CA
                # bundle again would cost each notifier (each scenario run) ~15 ms.
                verify=tls_context(),
            )
            self._log_filter = _HideWebhookUrl(self._url, self._shown_url)
        # A deque, not an asyncio.Queue: dropping the oldest waiting alert needs popleft.
        self._waiting: collections.deque[Alert] = collections.deque()
        self._in_flight: Alert | None = None
        self._wake = asyncio.Event()  # an alert was queued, or close() began
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._sent = 0
        self._delivered = 0
        self._retried = 0
        self._failed = 0
        self._rejected = 0
        self._dropped = 0

    def start(self) -> None:
        """Start delivering (on the running loop); idempotent. Nothing to start without a
        webhook."""
        if self._closed:
            raise RuntimeError("the alert notifier is closed; make a new one")
        if self._url is None or self._task is not None:
            return
        if self._log_filter is not None:
            logging.getLogger(_HTTPX_LOGGER).addFilter(self._log_filter)
        self._task = asyncio.get_running_loop().create_task(
            self._deliver_queue(), name="alert webhook delivery"
        )

    def notify(self, alert: Alert) -> None:
        """Log ``alert`` now and queue its webhook delivery; never waits, never raises for
        a webhook problem (those are retried, counted and logged by the delivery task)."""
        self._sent += 1
        details = "".join(f" {key}={value}" for key, value in alert.details.items())
        log.log(
            _LOG_LEVELS[alert.severity],
            "alert %s [%s] %s: %s%s (alert_id %s)",
            alert.category,
            alert.severity,
            alert.title,
            alert.message,
            details,
            alert.alert_id,
            extra={"alert": alert.payload()},
        )
        if self._url is None:
            return
        if self._closed:
            self._dropped += 1
            log.warning(
                "alert %s not sent to the webhook at %s: the notifier is closed (it was "
                "logged above)",
                alert.alert_id,
                self._origin,
            )
            return
        if len(self._waiting) >= self.settings.queue_size:
            dropped = self._waiting.popleft()
            self._dropped += 1
            log.warning(
                "alert %s dropped from the full webhook queue (%d waiting for %s, "
                "%d dropped so far); it was logged when raised. Raise %sQUEUE_SIZE or "
                "check the webhook",
                dropped.alert_id,
                len(self._waiting),
                self._origin,
                self._dropped,
                ENV_PREFIX,
            )
        self._waiting.append(alert)
        self._wake.set()

    def metrics(self) -> dict[str, float]:
        """The numbers named by ``metric_names()``.

        ``alerts_sent``: alerts raised (each was logged). With a webhook, each of those is
        eventually one of ``alerts_delivered`` (2xx), ``alerts_rejected`` (refused: 4xx
        other than 429, or a redirect), ``alerts_failed`` (given up after
        ``max_attempts``, or still undelivered when the notifier closed), ``alerts_dropped``
        (never tried: pushed out of the full queue, or raised after close), or is still
        ``alerts_pending`` (queued or being delivered). ``alerts_retried``: attempts
        repeated after a failure.
        """
        return {
            "alerts_sent": float(self._sent),
            "alerts_delivered": float(self._delivered),
            "alerts_retried": float(self._retried),
            "alerts_failed": float(self._failed),
            "alerts_rejected": float(self._rejected),
            "alerts_dropped": float(self._dropped),
            "alerts_pending": float(self._pending()),
        }

    async def aclose(self) -> None:
        """Deliver what is queued within ``close_timeout_s``, then stop; what is left is
        logged and counted as failed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        try:
            if task is not None:
                self._wake.set()  # the task ends once the queue is empty
                await asyncio.wait([task], timeout=self.settings.close_timeout_s)
        finally:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
            self._abandon_undelivered()
            if self._log_filter is not None:
                logging.getLogger(_HTTPX_LOGGER).removeFilter(self._log_filter)
            if self._http is not None:
                await self._http.aclose()

    def _pending(self) -> int:
        return len(self._waiting) + (self._in_flight is not None)

    def _abandon_undelivered(self) -> None:
        left = self._pending()
        if not left:
            return
        self._failed += left
        first = self._in_flight or self._waiting[0]
        self._waiting.clear()
        self._in_flight = None
        log.error(
            "alert notifier closed with %d alert(s) not delivered to the webhook at %s "
            "(from %s; each was logged when raised). Raise %sCLOSE_TIMEOUT_S to wait longer",
            left,
            self._origin,
            first.alert_id,
            ENV_PREFIX,
        )

    async def _deliver_queue(self) -> None:
        while True:
            if not self._waiting:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            alert = self._waiting.popleft()
            self._in_flight = alert
            try:
                await self._deliver(alert)
            except Exception:  # a bug here must not silence every later alert
                self._failed += 1
                log.exception(
                    "alert %s: delivery to the webhook at %s failed unexpectedly",
                    alert.alert_id,
                    self._origin,
                )
            # Not in a finally: when close() cancels a delivery, the alert stays in flight
            # so close() counts it as undelivered.
            self._in_flight = None

    async def _deliver(self, alert: Alert) -> None:
        """Attempts ``alert`` until it is delivered, rejected or out of attempts."""
        settings = self.settings
        for attempt in range(1, settings.max_attempts + 1):
            result = await self._attempt(alert)
            if result.outcome == "delivered":
                self._delivered += 1
                log.debug(
                    "alert %s delivered to %s (attempt %d)", alert.alert_id, self._origin, attempt
                )
                return
            if result.outcome == "rejected":
                self._rejected += 1
                log.error(
                    "alert %s rejected by the webhook at %s: %s; not retried (the request "
                    "would be refused again): check %sWEBHOOK_URL and the receiver",
                    alert.alert_id,
                    self._origin,
                    result.reason,
                    ENV_PREFIX,
                )
                return
            if attempt == settings.max_attempts:
                break
            delay = jittered_backoff(
                attempt, base_s=settings.backoff_base_s, max_s=settings.backoff_max_s, rng=self._rng
            )
            if result.retry_after_s is not None:
                # Honoured, but only up to backoff_max_s: a receiver asking for an hour
                # must not hold every later alert back for that long.
                delay = min(max(delay, result.retry_after_s), settings.backoff_max_s)
            self._retried += 1
            log.info(
                "alert %s: the webhook at %s %s (attempt %d of %d); retrying in %.2f s",
                alert.alert_id,
                self._origin,
                result.reason,
                attempt,
                settings.max_attempts,
                delay,
            )
            await asyncio.sleep(delay)
        self._failed += 1
        log.error(
            "alert %s not delivered: the webhook at %s %s on each of %d attempts; given up "
            "(it was logged when raised)",
            alert.alert_id,
            self._origin,
            result.reason,
            settings.max_attempts,
        )

    async def _attempt(self, alert: Alert) -> _Attempt:
        """One POST of ``alert``: what came of it."""
        # The delivery task is only started with a webhook, and so with a client.
        assert self._http is not None
        assert self._url is not None
        timeout = self.settings.timeout_s
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.post(
                    self._url,
                    json=alert.payload(),
                    headers={"Idempotency-Key": alert.alert_id},
                )
        except (TimeoutError, httpx.TimeoutException):
            return _Attempt("retry", f"did not answer within {timeout:g} s")
        except httpx.TransportError as error:
            # Connection refused or reset, DNS, TLS, a broken answer: nothing says the
            # alert arrived, and the Idempotency-Key makes a repeat harmless if it did.
            return _Attempt("retry", f"could not be reached ({self._describe(error)})")
        outcome = classify(response.status_code)
        reason = f"answered {response.status_code} {response.reason_phrase}".rstrip()
        return _Attempt(outcome, reason, retry_after_s(response))

    def _describe(self, error: Exception) -> str:
        """``Type: message`` of ``error``, with the webhook URL scrubbed out of it."""
        text = str(error).strip()
        if self._url is not None:
            text = text.replace(self._url, self._shown_url)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
