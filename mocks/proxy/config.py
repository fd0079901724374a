"""Where the TCP fault proxy listens, where it forwards to, and its few limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProxyConfig(BaseModel):
    """The proxy's settings, fixed for its life.

    - ``listen_host``/``listen_port``: where clients connect (port 0 picks a free one).
    - ``upstream_host``/``upstream_port``: the real service (PostgreSQL, Redis, a mock).
    - ``seed``: the fault plan's seed: which connections a probability picks, the jitter.
    - ``connect_timeout_s``: how long dialling the upstream may take before the client's
      connection is given up (journaled as ``unreachable``).
    - ``buffer_bytes``: the most bytes one direction may hold back (delayed, paced or
      blackholed) before the proxy stops reading its source, so a fast sender is slowed the
      way a full TCP window slows it, instead of filling the proxy's memory.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=0, ge=0, le=65_535)
    upstream_host: str = Field(min_length=1)
    upstream_port: int = Field(ge=1, le=65_535)
    seed: int = 0
    connect_timeout_s: float = Field(default=10.0, gt=0)
    buffer_bytes: int = Field(default=1 << 20, ge=1024)

    @property
    def upstream(self) -> str:
        return format_address(self.upstream_host, self.upstream_port)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:5432`` for IPv6) as (host, port); ValueError says what's wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:5432 or [::1]:5432")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 host goes in brackets: [::1]:5432")
    if not host:
        raise ValueError("the host is empty; expected HOST:PORT, e.g. 127.0.0.1:5432")
    if not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise ValueError(f"the port {port!r} is not a number from 1 to 65535")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
