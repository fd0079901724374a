"""The gateway's knobs: heartbeats, per-client queues, message, body and header limits, the
REST fallback, and the operator token that guards the kill switch.

Frozen like the other settings of the system; ``GatewaySettings.from_env`` reads
``SQUALL_GATEWAY_*`` (``SQUALL_GATEWAY_ALLOWED_ORIGINS`` is comma-separated). The operator
token (``SQUALL_GATEWAY_OPERATOR_TOKEN``) is a secret: never printed, and errors about it,
like every error of these settings, never show the value given.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from system.broker.settings import settings_from_env

# The shortest operator token accepted: guessing one must be hopeless.
MIN_OPERATOR_TOKEN_CHARS = 16


class GatewaySettings(BaseModel):
    """How the gateway treats its WebSocket clients and where its prices come from."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    heartbeat_interval_s: float = Field(
        default=15.0,
        gt=0,
        description='Seconds between {"type":"ping"} messages to every client.',
    )
    pong_timeout_s: float = Field(
        default=45.0,
        gt=0,
        description="A client that has not answered a ping (nor connected) for this long is "
        "closed with code 1011 and forgotten. Must exceed heartbeat_interval_s.",
    )
    client_queue_size: int = Field(
        default=256,
        ge=1,
        description="Messages waiting for one client at most; see ConnectionManager for what "
        "happens beyond (coalescing, then dropping the oldest).",
    )
    saturation_close_s: float = Field(
        default=10.0,
        gt=0,
        description="A client whose queue keeps overflowing this long without catching up is "
        "closed with code 1013 (try again later).",
    )
    close_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a close initiated by the gateway may take before the connection "
        "is aborted (a client that never reads cannot receive a close frame).",
    )
    max_message_bytes: int = Field(
        default=4096,
        ge=64,
        description="Client messages longer than this (UTF-8 bytes) are answered with an error "
        "and ignored; the connection stays open.",
    )
    max_frame_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="A client WebSocket message longer than this (bytes, all its frames) "
        "closes its connection with code 1009 (message too big), in uvicorn, before the "
        "gateway reads it; the other clients are not affected. It is also the most a client "
        "can make the gateway buffer of a message still arriving. At least max_message_bytes.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="An HTTP request body longer than this (bytes) is answered 413 before it "
        "is held whole (system.gateway.limits.BodyLimit); the API's bodies are under 1 KiB.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=4096,
        description="An HTTP request (or WebSocket handshake) whose request line and headers "
        "pass this many bytes is answered 431 and its connection closed.",
    )
    rest_fallback_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="While the realtime feed is not live, subscribed tickers are quoted over "
        "REST this often and sent marked stale.",
    )
    rest_quote_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="The longest one fallback quote may take; the round gives up on it then.",
    )
    signal_history: int = Field(
        default=20,
        ge=0,
        description='The most recent signals replayed to a client subscribing to "signals".',
    )
    send_buffer_bytes: int | None = Field(
        default=None,
        ge=4096,
        description="The kernel send buffer of each client connection (SO_SNDBUF). None leaves "
        "it to the OS, which on Linux grows it up to 4 MB: a stuck client then swallows minutes "
        "of updates before its queue even starts to fill. A bound makes the overflow policy "
        "act sooner and caps kernel memory per client.",
    )
    allowed_origins: tuple[str, ...] = Field(
        default=(),
        description="Browser origins (e.g. https://desk.example.com) besides the gateway's own "
        "that may open /ws; '*' allows any. Clients sending no Origin (not browsers) are "
        "always allowed.",
    )
    operator_token: SecretStr | None = Field(
        default=None,
        description="The bearer token POST /api/kill-switch requires (engaging or releasing "
        f"the trading halt): at least {MIN_OPERATOR_TOKEN_CHARS} printable ASCII characters, "
        "no spaces. None: nobody may set the kill switch over the API (reading it needs no "
        "token).",
    )

    redis_url: SecretStr | None = Field(
        default=None,
        description="redis://[:password@]host:port/db of the Redis that gateways of one "
        "deployment share signals through (system.gateway.fanout). None: this gateway "
        "serves its own signals only. A secret (it may hold a password): never printed.",
    )
    fanout_channel: str = Field(
        default="squall:signals",
        min_length=1,
        description="The Redis pub/sub channel the gateways of one deployment share; "
        "deployments sharing one Redis need different channels.",
    )
    fanout_reconnect_max_s: float = Field(
        default=10.0,
        gt=0,
        description="The longest wait between attempts to reach Redis again while it is "
        "away (the waits double from half a second up to this, jittered).",
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # Never echo the value: it may hold the password.
        if urlsplit(value.get_secret_value()).scheme not in ("redis", "rediss"):
            raise ValueError(
                "redis_url must be a redis:// (or rediss://) URL, e.g. redis://127.0.0.1:6379/0"
            )
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # The environment can only say "a,b"; a list in code is taken as it is.
        if isinstance(value, str):
            return tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        return value

    @field_validator("operator_token")
    @classmethod
    def _check_operator_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        # Never echo the value, nor any part of it.
        if len(token) < MIN_OPERATOR_TOKEN_CHARS or not all("!" <= char <= "~" for char in token):
            raise ValueError(
                f"operator_token must be at least {MIN_OPERATOR_TOKEN_CHARS} printable ASCII "
                "characters without spaces (it is sent as an HTTP header); make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return SecretStr(token)

    # A field validator, not a model one: its error then names the field, and so the
    # environment variable settings_from_env reports.
    @field_validator("max_frame_bytes")
    @classmethod
    def _check_max_frame_bytes(cls, value: int, info: ValidationInfo) -> int:
        message_bytes = info.data.get("max_message_bytes")
        if message_bytes is not None and value < message_bytes:
            raise ValueError(
                f"must be at least max_message_bytes ({message_bytes}): a message the gateway "
                "would answer must not close the connection first"
            )
        return value

    @field_validator("pong_timeout_s")
    @classmethod
    def _check_pong_timeout(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("heartbeat_interval_s")
        if interval is not None and value <= interval:
            raise ValueError(
                f"must exceed heartbeat_interval_s ({interval}), or clients are closed before "
                "they can answer a ping; three intervals is a good timeout"
            )
        return value

    @classmethod
    def from_env(
        cls, prefix: str = "SQUALL_GATEWAY_", environ: Mapping[str, str] | None = None
    ) -> GatewaySettings:
        """Read ``{prefix}{FIELD}`` variables (upper case), e.g. ``SQUALL_GATEWAY_PONG_TIMEOUT_S``.

        Every field has a default; errors name the variable (``SettingsError``).
        """
        return settings_from_env(
            cls,
            prefix,
            environ,
            purpose="the gateway",
            example=f"{prefix}HEARTBEAT_INTERVAL_S=15, "
            f"{prefix}ALLOWED_ORIGINS=https://desk.example.com",
        )
