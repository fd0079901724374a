"""Where the system is wired: settings from the environment → KIS client → trading service.

This is the one place that builds the system; everything else receives its parts. Today it
builds the service only: there is no HTTP app yet (the FastAPI gateway with ``/health`` and
``/metrics`` comes later and will be wired here too, around the same ``TradingService``).

Environment: ``SQUALL_KIS_*`` (``KisSettings``: base URL, credentials, account, budgets) and
``SQUALL_SERVICE_*`` (``ServiceSettings``: deadlines, retry and reconciliation policy).
"""

from __future__ import annotations

from collections.abc import Mapping

from system.broker import KisClient, KisSettings
from system.service import ServiceSettings, TradingService


def build_service(environ: Mapping[str, str] | None = None) -> TradingService:
    """A ``TradingService`` configured from ``environ`` (default: the process environment).

    Raises ``SettingsError`` naming the variables to fix. The caller owns the result: use
    ``async with`` or ``aclose()`` so the client's connections are closed.
    """
    # Both settings are read before the client exists, so a bad variable leaks no client.
    kis = KisSettings.from_env(environ=environ)
    policy = ServiceSettings.from_env(environ=environ)
    return TradingService(KisClient(kis), policy)
