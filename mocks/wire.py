"""Access to the TCP connection under an ASGI request, for faults below HTTP.

A reset, a close without a reply or a truncated body can't be expressed in ASGI messages.
``mocks.server`` runs uvicorn with a protocol that puts the connection's transport into the
request scope; these helpers act on it. Without one (an in-process ASGI transport in a unit
test) they raise ``WireUnavailable`` so nobody mistakes the missing fault for a passing test.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

TRANSPORT_KEY = "squall.transport"


class WireUnavailable(RuntimeError):
    """The fault needs a real socket; run the mock with ``mocks.server`` (real loopback)."""


def transport_of(scope: MutableMapping[str, Any]) -> asyncio.Transport:
    extensions = scope.get("extensions") or {}
    transport = extensions.get(TRANSPORT_KEY)
    if transport is None:
        raise WireUnavailable(
            "this fault acts on the TCP connection, but the request did not arrive over one; "
            "serve the mock with mocks.server (squall mock broker) to use it"
        )
    return transport  # type: ignore[no-any-return]


def abort_with_rst(transport: asyncio.Transport) -> None:
    """Abort with an RST: SO_LINGER 0 makes close() discard the connection instead of FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone: the abort is all that is left
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def reset(scope: MutableMapping[str, Any]) -> None:
    """Abort the request's connection with an RST."""
    abort_with_rst(transport_of(scope))


def close(scope: MutableMapping[str, Any]) -> None:
    transport_of(scope).close()


def write_raw(scope: MutableMapping[str, Any], data: bytes) -> None:
    transport_of(scope).write(data)
