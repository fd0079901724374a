"""A simulated broker REST API (KIS Open API, or Kiwoom REST with ``api="kiwoom"``): the
gateway, its rules, and a simulated account."""

from mocks.broker.app import create_app
from mocks.broker.config import BrokerConfig

__all__ = ["BrokerConfig", "create_app"]
