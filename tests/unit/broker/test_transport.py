"""The broker client's transport on real loopback sockets: pooling, a server's closes, timeouts,
refusals and TLS, seen through httpx's public API and exceptions."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from harness.ports import free_port
from system.broker.http import BrokerHttp
from system.broker.transport import MAX_BODY_BYTES, BrokerTransport

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"rt_cd":0}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class Server:
    """A tiny HTTP/1.1 server whose behaviour per connection each test writes."""

    url: str
    connections: list[int] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _answer_with(raw: bytes, delay: float = 0.0) -> Handler:
    """A handler that answers every request on its connection with ``raw`` after ``delay``
    seconds, and hangs up after one that says ``Connection: close``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            try:
                await _read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            await asyncio.sleep(delay)
            writer.write(raw)
            await writer.drain()
            if b"connection: close" in raw.lower():
                return

    return answer


_answer_forever = _answer_with(OK)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(
        handler: Handler = _answer_forever, tls: ssl.SSLContext | None = None
    ) -> Server:
        scheme = "https" if tls else "http"
        made = Server(url="")

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            made.connections.append(len(made.connections))
            try:
                await handler(reader, writer, len(made.connections))
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        made.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return made

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _client(
    url: str, verify: ssl.SSLContext | None = None, timeout: float = 2.0
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        transport=BrokerTransport(verify=verify or ssl.create_default_context()),
        timeout=timeout,
    )


async def test_requests_go_through_the_asyncio_backend_and_reuse_one_connection(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve()
    async with _client(server.url) as client:
        for _ in range(5):
            response = await client.get("/uapi/domestic-stock/v1/quotations/inquire-price")
            assert response.json() == {"rt_cd": 0}
        stream = response.extensions["network_stream"]
    # The connection is ours: the pool swap in BrokerTransport took effect.
    assert type(stream).__module__ == "system.broker.transport"
    assert server.connections == [0]


async def test_a_connection_the_server_closed_while_idle_is_replaced_not_failed(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()

    server = await serve(one_answer_then_close)
    async with _client(server.url) as client:
        assert (await client.get("/a")).status_code == 200
        await asyncio.sleep(0.05)  # the FIN arrives while the connection idles in the pool
        assert (await client.get("/b")).status_code == 200
    assert server.connections == [0, 1]


async def test_a_silent_server_is_a_read_timeout(serve: Callable[..., Awaitable[Server]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    server = await serve(silent)
    async with _client(server.url, timeout=0.1) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")


async def test_a_server_that_hangs_up_without_answering_is_a_protocol_error(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await _read_request(reader)

    server = await serve(hang_up)
    async with _client(server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="disconnected"):
            await client.get("/gone")


async def test_a_reset_mid_answer_is_a_read_error(serve: Callable[..., Awaitable[Server]]) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await _read_request(reader)
        writer.write(OK[:40])
        await writer.drain()
        writer.transport.abort()  # RST, not FIN

    server = await serve(reset)
    async with _client(server.url) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get("/reset")


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with _client(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/")


async def test_tls_verifies_the_server_and_refuses_an_untrusted_one(
    serve: Callable[..., Awaitable[Server]], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    server = await serve(tls=served)

    trusting = ssl.create_default_context(cafile=str(cert))
    async with _client(server.url, verify=trusting) as client:
        response = await client.get("/oauth2/tokenP")
        assert response.json() == {"rt_cd": 0}
        assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None

    async with _client(server.url, verify=ssl.create_default_context()) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get("/oauth2/tokenP")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS test needs the openssl command (Debian package openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_a_body_larger_than_the_read_buffer_arrives_whole(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes several times

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    server = await serve(large)
    async with _client(server.url) as client:
        response = await client.get("/large")
    assert response.content == body


# BrokerHttp: requests straight to the transport, on the same real sockets.


def _broker_http(url: str, timeout: float = 2.0) -> BrokerHttp:
    transport = BrokerTransport(verify=ssl.create_default_context())
    return BrokerHttp(url + "/", transport, httpx.Timeout(timeout))


async def test_broker_http_sends_what_httpx_would_and_reads_the_answer_whole(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            try:
                heads.append(await _read_request(reader))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(OK)
            await writer.drain()

    server = await serve(record)
    http = _broker_http(server.url)
    try:
        request = http.build_request(
            "GET", "/quote", params={"FID_INPUT_ISCD": "005930"}, headers={"TR_ID": "FHK"}
        )
        response = await http.send(request)
        again = await http.send(http.build_request("GET", "/quote"))
    finally:
        await http.aclose()
    assert str(request.url) == f"{server.url}/quote?FID_INPUT_ISCD=005930"
    assert response.json() == {"rt_cd": 0}
    assert response.request is request
    assert again.status_code == 200
    assert server.connections == [0]  # kept alive, reused
    head = heads[0].decode().lower()
    assert head.startswith("get /quote?fid_input_iscd=005930 http/1.1\r\n")
    for line in ("host: 127.0.0.1:", "tr_id: fhk", "accept: */*", "connection: keep-alive"):
        assert f"\r\n{line}" in head


async def test_broker_http_keeps_httpx_timeouts_and_exceptions(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    server = await serve(silent)
    http = _broker_http(server.url, timeout=0.1)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await http.send(http.build_request("GET", "/slow"))
    finally:
        await http.aclose()
    refused = _broker_http(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(httpx.ConnectError):
        await refused.send(refused.build_request("GET", "/"))
    await refused.aclose()


async def test_a_closed_broker_http_refuses_to_send() -> None:
    http = _broker_http("http://127.0.0.1:9")
    await http.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await http.send(http.build_request("GET", "/"))


def test_httpcore_finds_sniffio() -> None:
    # httpcore imports sniffio on every lock it sets up (several per request); without it
    # each import fails anew after searching sys.path, which cost the EGW00133 storm a third
    # of its speed. anyio no longer depends on it, so pyproject.toml names it.
    assert importlib.util.find_spec("sniffio") is not None, "pip install sniffio"


async def test_a_chunked_answer_arrives_whole_and_keeps_the_connection(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    )
    server = await serve(_answer_with(chunked))
    async with _client(server.url) as client:
        assert (await client.get("/a")).json() == {"a": 1}
        assert (await client.get("/b")).json() == {"a": 1}
    assert server.connections == [0]


async def test_an_answer_without_length_runs_to_the_close_and_is_not_reused(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    until_close = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"rt_cd":"0"}'
    server = await serve(_answer_with(until_close))
    async with _client(server.url) as client:
        assert (await client.get("/a")).json() == {"rt_cd": "0"}
        assert (await client.get("/b")).json() == {"rt_cd": "0"}
    assert server.connections == [0, 1]


async def test_an_answer_that_is_not_http_is_a_protocol_error(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(_answer_with(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    async with _client(server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match=r"not an HTTP/1\.1 answer"):
            await client.get("/a")


async def test_an_answer_over_the_body_limit_is_refused(
    serve: Callable[..., Awaitable[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("system.broker.transport.MAX_BODY_BYTES", 1000)
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    server = await serve(_answer_with(big))
    async with _client(server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="passed 1000 bytes"):
            await client.get("/a")
    assert MAX_BODY_BYTES >= 1024 * 1024  # the real limit is far above any broker answer


async def test_the_pool_limit_queues_requests_and_times_out_the_wait(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(_answer_with(OK, delay=0.05))
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    transport = BrokerTransport(verify=ssl.create_default_context(), limits=one)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        answers = await asyncio.gather(*(client.get(f"/{n}") for n in range(3)))
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert server.connections == [0]  # one connection, taken in turn
        short = httpx.Timeout(2.0, pool=0.01)
        with pytest.raises(httpx.PoolTimeout):
            await asyncio.gather(client.get("/a", timeout=short), client.get("/b", timeout=short))


async def test_bytes_on_an_idle_connection_retire_it(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    # An answer followed by bytes nobody asked for: the connection's state is unknown.
    server = await serve(_answer_with(OK + b"HTTP/1.1 200 OK\r\n"))
    async with _client(server.url) as client:
        assert (await client.get("/a")).status_code == 200
        await asyncio.sleep(0.05)
        assert (await client.get("/b")).status_code == 200
    assert server.connections == [0, 1]


async def test_an_informational_answer_before_the_answer_is_passed_over(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(_answer_with(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK))
    async with _client(server.url) as client:
        response = await client.get("/a")
        assert response.status_code == 200
        assert "link" not in response.headers
        assert (await client.get("/b")).json() == {"rt_cd": 0}
    assert server.connections == [0]


async def test_a_clean_close_in_the_middle_of_an_answer_is_a_protocol_error(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    half = b'HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{"rt_cd":'
    server = await serve(_answer_with(half))
    async with _client(server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="in the middle of its answer"):
            await client.get("/a")
