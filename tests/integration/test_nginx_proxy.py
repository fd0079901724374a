"""The shipped nginx config (deploy/nginx.conf) in a real nginx, in front of the real gateway.

The production incident behind this: a reverse proxy that did not pass the WebSocket upgrade,
so /ws died while /health stayed green. These tests run the very file an operator installs:

- it passes ``nginx -t`` as shipped;
- with only its EDIT lines changed (the upstream address, the listen address) it upgrades /ws
  and carries ticks, heartbeats, /health, /metrics and the dashboard's origin check through;
- with its three upgrade lines deleted, the handshake gets the gateway's 404 while /health
  still answers 200: the production failure, reproduced.

The mock broker and feed, the system and its gateway run in the test's event loop on free
loopback ports; nginx is a subprocess with its own prefix directory. Real time throughout (no
looptime): nginx is a process outside the loop. Needs the Debian package nginx
(``./scripts/system-deps nginx``); without it the tests fail and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from harness.ports import free_port
from harness.stack import system_settings
from mocks.broker import BrokerConfig
from mocks.world import serve_world
from system.app import running_system
from system.gateway import GatewayServer, serve

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"

# The lines an operator edits (marked EDIT in the file), so the only ones the tests change.
UPSTREAM_SERVER = re.compile(r"^(?P<indent>[ \t]*)server[ \t]+[^;\s]+;(?P<rest>.*)$", re.M)
LISTEN = re.compile(r"^(?P<indent>[ \t]*)listen[ \t]+[^;]+;(?P<rest>.*)$", re.M)

# What makes /ws a WebSocket through nginx; deleting exactly these is the production failure.
UPGRADE_LINES = (
    re.compile(r"^[ \t]*proxy_http_version[ \t]+1\.1;.*\n", re.M),
    re.compile(r"^[ \t]*proxy_set_header[ \t]+Upgrade[ \t]+\$http_upgrade;.*\n", re.M),
    re.compile(r"^[ \t]*proxy_set_header[ \t]+Connection[ \t]+\$connection_upgrade;.*\n", re.M),
)

# Pings every half second so heartbeats happen within the test; the pong timeout is far
# enough that a slow machine is not mistaken for a dead client.
GATEWAY = {"heartbeat_interval_s": 0.5, "pong_timeout_s": 5.0}
TICKER = "005930"

STARTUP_S = 5.0
STOP_S = 5.0
LOG_TAIL_CHARS = 4000


@pytest.fixture(scope="module")
def nginx_exe() -> str:
    # Debian puts nginx in /usr/sbin, which is not on a non-root user's PATH.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(
            "nginx is not installed, and these tests run a real one in front of the gateway: "
            "run `./scripts/system-deps nginx` (as root it installs the Debian package), "
            "then run the tests again",
            pytrace=False,
        )
    return found


# --- the config under test ------------------------------------------------------------------


def site_for_test(shipped: str, *, upstream: str, listen: str) -> str:
    """``shipped`` with its EDIT lines pointed at the test's gateway and port; nothing else.

    Fails if the file no longer has exactly one of each, or if anything but those two lines
    would differ: the tests must exercise the file an operator installs.
    """
    site, upstreams = UPSTREAM_SERVER.subn(rf"\g<indent>server {upstream};\g<rest>", shipped)
    site, listens = LISTEN.subn(rf"\g<indent>listen {listen};\g<rest>", site)
    assert (upstreams, listens) == (1, 1), (
        f"{SHIPPED} should have exactly one upstream `server` line and one `listen` line (the "
        f"EDIT lines the tests repoint); found {upstreams} and {listens}"
    )
    before, after = shipped.splitlines(), site.splitlines()
    changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert len(changed) == 2, f"only the two EDIT lines may change, not lines {changed}"
    assert all("EDIT" in before[i] for i in changed), [before[i] for i in changed]
    return site


def without_upgrade(site: str) -> str:
    """``site`` with the three upgrade lines deleted: a proxy configured like the incident's.

    Fails unless each line was there exactly once, so the derivation cannot silently change
    nothing (and the "broken" proxy turn out to be the working one).
    """
    for line in UPGRADE_LINES:
        site, deleted = line.subn("", site)
        assert deleted == 1, f"{SHIPPED} should contain /{line.pattern}/ exactly once"
    return site


def outer_conf(prefix: Path, site: Path) -> str:
    """The main context around the site, as /etc/nginx/nginx.conf gives it to an operator, but
    in the foreground and with every file under ``prefix`` (Debian's build puts the temp paths
    in /var/lib/nginx, and the logs in /var/log/nginx)."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        f"events {{\n    worker_connections 64;\n}}\n"
        f"http {{\n"
        f"    access_log {prefix / 'access.log'};\n"
        f"{temp}\n"
        f"    include {site};\n"
        f"}}\n"
    )


# --- running nginx --------------------------------------------------------------------------


@dataclass(frozen=True)
class Nginx:
    port: int
    prefix: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def logs(self) -> str:
        """The end of nginx's logs, for failure messages: the access log has each request's
        status (101 for an upgrade), the error log and stderr say why nginx did what it did."""
        parts = []
        for name in ("access.log", "error.log", "stderr.log"):
            path = self.prefix / name
            text = path.read_text(errors="replace") if path.exists() else "(not written)\n"
            parts.append(f"--- nginx {name} ({path}) ---\n{text[-LOG_TAIL_CHARS:]}")
        return "".join(parts)


@contextlib.contextmanager
def nginx_prefix() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="squall-nginx-") as name:
        prefix = Path(name)
        # As root, nginx's workers run as `nobody`: they must reach the temp paths the master
        # creates (and chowns to them) in here, which mkdtemp's 0700 would forbid. nginx
        # creates only the last component of each, so their parent is made here.
        prefix.chmod(0o755)
        (prefix / "temp").mkdir(mode=0o755)
        yield prefix


def nginx_command(exe: str, prefix: Path, *options: str) -> list[str]:
    # -e: messages from before the config is read go to the prefix too, not to stderr.
    conf = prefix / "nginx.conf"
    return [exe, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf), *options]


def gateway_address(gateway: GatewayServer) -> str:
    return f"{gateway.host}:{gateway.port}"


@contextlib.asynccontextmanager
async def running_nginx(
    exe: str, gateway: GatewayServer, edit: Callable[[str], str] = lambda site: site
) -> AsyncIterator[Nginx]:
    """nginx serving the shipped site (EDIT lines pointed at ``gateway`` and a free loopback
    port, then ``edit``) until the block exits; stopped whatever happens. A failure inside
    the block carries nginx's logs as a note."""
    with nginx_prefix() as prefix:
        # nginx binds its own socket, so the port is only free when asked; the gap is a few
        # milliseconds.
        nginx = Nginx(free_port(), prefix)
        site = prefix / "squall-gateway.conf"
        shipped = SHIPPED.read_text()
        site.write_text(
            edit(
                site_for_test(
                    shipped, upstream=gateway_address(gateway), listen=f"127.0.0.1:{nginx.port}"
                )
            )
        )
        (prefix / "nginx.conf").write_text(outer_conf(prefix, site))
        with (prefix / "stderr.log").open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *nginx_command(exe, prefix),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                # Its own process group, so master and workers can be killed together.
                start_new_session=True,
            )
        try:
            await wait_until_serving(process, nginx)
            try:
                yield nginx
            except BaseException as exc:
                exc.add_note(nginx.logs())
                raise
        finally:
            await stop(process)


async def wait_until_serving(process: asyncio.subprocess.Process, nginx: Nginx) -> None:
    """Until nginx has bound its port (it writes its pid file only after that) and the port
    accepts a connection; a failure names why, with nginx's logs."""
    pid_file = nginx.prefix / "nginx.pid"
    deadline = asyncio.get_running_loop().time() + STARTUP_S
    while True:
        if process.returncode is not None:
            pytest.fail(
                f"nginx exited during start-up (status {process.returncode}):\n{nginx.logs()}"
            )
        with contextlib.suppress(OSError, ValueError):
            if int(pid_file.read_text()) == process.pid:
                _, writer = await asyncio.open_connection("127.0.0.1", nginx.port)
                writer.close()
                await writer.wait_closed()
                return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"nginx did not serve {nginx.url} within {STARTUP_S} s:\n{nginx.logs()}")
        await asyncio.sleep(0.02)


async def stop(process: asyncio.subprocess.Process) -> None:
    """TERM (nginx's fast shutdown), then KILL to the whole group if it lingers."""
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


# --- the system behind it -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_gateway() -> AsyncIterator[GatewayServer]:
    """The mock broker and feed, the system against them and its gateway, wired as `squall up`
    wires them."""
    async with (
        serve_world(BrokerConfig(seed=7)) as world,
        running_system(system_settings(world, gateway=GATEWAY)) as system,
        serve(system.app) as gateway,
    ):
        yield gateway


async def receive(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found is not None, f"{name} is not in /metrics:\n{text}"
    return float(found.group(1))


# --- the tests ------------------------------------------------------------------------------


def test_the_shipped_file_passes_nginx_t_as_shipped(nginx_exe: str) -> None:
    # The file itself, unedited, included where an operator includes it (inside http {}).
    with nginx_prefix() as prefix:
        (prefix / "nginx.conf").write_text(outer_conf(prefix, SHIPPED))
        checked = subprocess.run(
            nginx_command(nginx_exe, prefix, "-t"),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        log = (prefix / "error.log").read_text(errors="replace")
    assert checked.returncode == 0, f"nginx -t rejected {SHIPPED}:\n{log}{checked.stderr}"
    assert "test is successful" in log + checked.stderr, log + checked.stderr


async def test_ws_upgrades_and_carries_ticks_and_heartbeats_through_nginx(nginx_exe: str) -> None:
    async with (
        running_gateway() as gateway,
        running_nginx(nginx_exe, gateway) as nginx,
        httpx.AsyncClient(base_url=nginx.url, timeout=5) as http,
    ):
        health = await http.get("/health")
        assert health.status_code == 200, health.text
        assert "feed" in health.json(), health.text  # the gateway's verdict, not an nginx page
        # server_tokens off: it is nginx answering, without naming its version.
        assert health.headers["server"] == "nginx"
        page = await http.get("/")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html"), page.headers

        # The Origin a browser sends from the dashboard served through nginx: the gateway
        # accepts it only because nginx passes the Host with its port ($http_host).
        async with connect(nginx.ws_url, origin=Origin(nginx.url), ping_interval=None) as ws:
            hello = await receive(ws)
            assert hello["type"] == "connected", hello
            await send(ws, {"type": "subscribe", "ticker": TICKER})

            seen: list[dict[str, Any]] = []
            ticks: list[dict[str, Any]] = []
            pongs_sent = 0
            try:
                async with asyncio.timeout(10):
                    while len(ticks) < 2 or pongs_sent < 2:
                        message = await receive(ws)
                        seen.append(message)
                        if message["type"] == "ping":
                            await send(ws, {"type": "pong", "ts": message["ts"]})
                            pongs_sent += 1
                        elif (
                            message["type"] == "price_update"
                            and message["data"]["source"] == "feed"
                        ):
                            ticks.append(message)
            except TimeoutError:
                pytest.fail(f"expected 2 feed ticks and 2 pings through nginx; got: {seen}")
            assert {"type": "subscribed", "ticker": TICKER} in seen, seen
            assert {tick["ticker"] for tick in ticks} == {TICKER}, ticks
            assert all(tick["data"]["stale"] is False for tick in ticks), ticks
            stamps = [tick["data"]["at"] for tick in ticks]
            assert all(a < b for a, b in pairwise(stamps)), ticks

            # Our pongs arrived: ask for a pong of our own, which the gateway sends only after
            # handling everything this client sent before (gateway pings are left unanswered
            # meanwhile, so the count below is exact).
            await send(ws, {"type": "ping"})
            async with asyncio.timeout(5):
                while (await receive(ws))["type"] != "pong":
                    pass
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200, metrics.text
            assert metrics.headers["content-type"].startswith("text/plain"), metrics.headers
            assert metric(metrics.text, "gateway_pongs_received_total") == pongs_sent


async def test_without_the_upgrade_lines_ws_fails_while_health_stays_green(
    nginx_exe: str,
) -> None:
    async with (
        running_gateway() as gateway,
        running_nginx(nginx_exe, gateway, edit=without_upgrade) as nginx,
        httpx.AsyncClient(base_url=nginx.url, timeout=5) as http,
    ):
        # The gateway itself takes WebSockets, so what fails below is the proxy.
        async with connect(gateway.ws_url, ping_interval=None) as direct:
            assert (await receive(direct))["type"] == "connected"

        with pytest.raises(InvalidStatus) as refused:
            await connect(nginx.ws_url, ping_interval=None, open_timeout=5)
        # nginx passed a plain HTTP/1.0 `GET /ws` with no Upgrade header; the gateway has no
        # HTTP route there, so FastAPI answers its 404, and nginx relays it to the client.
        response = refused.value.response
        assert response.status_code == 404, response
        assert json.loads(response.body or b"") == {"detail": "Not Found"}, response.body
        assert response.headers["server"] == "nginx", response.headers

        # ...while everything a health check looks at is fine: why the incident went unseen.
        health = await http.get("/health")
        assert health.status_code == 200, health.text
        assert "feed" in health.json(), health.text
