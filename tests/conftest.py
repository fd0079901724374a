"""Shared by every tier."""

from __future__ import annotations

import respx

# The broker client's pool is Squall's own (system.broker.transport.BrokerPool), in httpcore's
# interface: respx mocks it as it mocks httpcore's pools.
respx.mocks.HTTPCoreMocker.add_targets("system.broker.transport.BrokerPool")
