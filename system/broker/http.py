"""HTTP to one broker: requests built against its base URL and handed straight to the transport.

Why not ``httpx.AsyncClient.send``: around every request it runs an auth flow and a redirect
loop, extracts cookies through ``http.cookiejar``, and merges the URL with ``base_url`` by
parsing both again. The broker APIs use none of that (no cookies, no redirects, the token is a
header the gateway writes), and on loopback it was ~0.2 ms of a ~0.55 ms exchange (measured
with py-spy on the EGW00133 storm, where it was the largest single cost).

What stays httpx's: ``httpx.Request`` and ``httpx.Response``, the transport (pooling,
keep-alive, TLS), timeouts, and the exceptions callers catch (``httpx.ConnectError``,
``httpx.ReadTimeout``, …), which the transport raises while sending and while the body is read.

Decision: proxies named by ``HTTP_PROXY``/``HTTPS_PROXY`` are not consulted; the broker is
reached directly, or through the transport a deployment passes in.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

# The headers httpx.AsyncClient adds to every request, so the broker sees the same requests
# as before BrokerHttp; a request's own headers (the wire's) win over them.
_DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}


class BrokerHttp:
    """Requests to ``base_url`` through ``transport``, each answer read in full."""

    def __init__(
        self, base_url: str, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self._timeout = timeout.as_dict()
        self.closed = False

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """A request for ``path`` (under the base URL) with httpx's default headers, then
        ``headers``."""
        merged = dict(_DEFAULT_HEADERS)
        if headers:
            merged.update((name.lower(), value) for name, value in headers.items())
        return httpx.Request(
            method,
            httpx.URL(self.base_url + path, params=params or None),
            content=content,
            headers=merged,
            extensions={"timeout": self._timeout},
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The broker's answer to ``request``, body read. Raises ``httpx.TransportError``
        (``TimeoutException``, ``ConnectError``, …) when there is none, and RuntimeError
        once closed, as httpx's client does."""
        if self.closed:
            raise RuntimeError("Cannot send a request, as the broker client has been closed.")
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        self.closed = True
        await self.transport.aclose()
