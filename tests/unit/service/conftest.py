"""The service's tests reuse the KIS client's respx broker and fixtures (conftest files only
reach their own directory, so they are re-exported here)."""

from tests.unit.broker.conftest import broker, make_client, token_route

__all__ = ["broker", "make_client", "token_route"]
