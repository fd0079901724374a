"""A simulated KIS Open API: the REST gateway, its rules, and a simulated account."""

from mocks.broker.app import create_app
from mocks.broker.config import BrokerConfig

__all__ = ["BrokerConfig", "create_app"]
