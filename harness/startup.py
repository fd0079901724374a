"""Start-up scenarios: one of Squall's servers started as its user starts it, into a
condition that must make it refuse, and what it did.

The command runs in a process of its own (``python -m harness.cli …``, the entry point the
``squall`` script calls) with the caller's ``SQUALL_*`` and ``DATABASE_URL`` variables
removed, so the shell a scenario runs from cannot change its outcome. The harness sets the
condition up first and keeps it until the command has exited:

- ``taken``: a socket of this process listens on the port, so the command can name its
  holder;
- for the system: the mock broker and feed it needs, its credentials, and a database URL
  that is wrong the way ``database`` says (the harness's PostgreSQL with a wrong password
  or a missing database; a free port; a socket that accepts and never answers).

The command gets the scenario's ``duration`` to exit. One still running then is stopped,
and counts as not having exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from harness.database import shared_cluster
from harness.ports import free_port
from harness.result import Launched
from harness.scenario.model import PORT_OPTIONS, DatabaseProblem, Scenario, StartUp
from harness.stack import ACCOUNT, APPKEY, APPSECRET
from mocks.broker import BrokerConfig
from mocks.world import serve_world
from system.storage.config import ENV_PREFIX as POOL_PREFIX
from system.storage.config import URL_VARIABLES
from system.storage.settings import ENV_PREFIX as STORAGE_PREFIX

# ``squall`` itself, run by this interpreter: the same code whatever is on PATH.
DEFAULT_LAUNCHER: tuple[str, ...] = (sys.executable, "-m", "harness.cli")
# How long a command stopped at the deadline gets to go before it is killed.
_STOP_GRACE_S = 5.0


async def launch(
    scenario: Scenario, seed: int, launcher: Sequence[str] = DEFAULT_LAUNCHER
) -> Launched:
    """Set up the scenario's condition, run its command, and keep the condition until the
    command has exited (or been stopped at the deadline)."""
    start = scenario.start
    assert start is not None  # the runner sends only start-up scenarios here
    rng = random.Random(seed)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SQUALL_") and name not in URL_VARIABLES
    }
    secrets: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        ports = dict.fromkeys(PORT_OPTIONS[start.command], 0)
        taken = None
        if start.taken is not None:
            taken = stack.enter_context(_listening()).getsockname()[1]
            ports[start.taken] = taken
        args = start.command.split()
        for option, port in ports.items():
            args += [option, str(port)]
        if start.command == "mock broker":
            args += ["--seed", str(seed)]
        elif start.command == "mock proxy":
            # Nothing needs to answer there: the proxy connects upstream per client.
            args += ["--upstream", "127.0.0.1:9", "--seed", str(seed)]
        elif start.command == "system":
            world = await stack.enter_async_context(serve_world(BrokerConfig(seed=seed)))
            env |= {
                "SQUALL_KIS_BASE_URL": world.broker.url,
                "SQUALL_KIS_APPKEY": APPKEY,
                "SQUALL_KIS_APPSECRET": APPSECRET,
                "SQUALL_KIS_ACCOUNT": ACCOUNT,
                "SQUALL_FEED_URL": world.feed_url,
            }
            secrets["the broker appsecret"] = APPSECRET
            if start.database is not None:
                url, password = await _database_url(start, stack, rng)
                env[URL_VARIABLES[0]] = url
                if password:  # a server that takes none (DATABASE_URL without one) has none
                    secrets["the database password"] = password
            env |= storage_environment(scenario.system.storage)
        argv = (*launcher, *args)
        status, output, seconds = await _run(argv, env, scenario.duration)
    return Launched(argv, status, output, seconds, scenario.duration, taken, secrets)


def storage_environment(overrides: Mapping[str, Any]) -> dict[str, str]:
    """A scenario's ``system.storage`` overrides as the variables the system reads:
    ``pool`` fields as ``SQUALL_DB_*``, the others as ``SQUALL_STORAGE_*``."""
    env: dict[str, str] = {}
    for key, value in overrides.items():
        if key == "pool" and isinstance(value, Mapping):
            env |= {f"{POOL_PREFIX}{name.upper()}": _text(v) for name, v in value.items()}
        else:
            env[f"{STORAGE_PREFIX}{key.upper()}"] = _text(value)
    return env


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


async def _database_url(
    start: StartUp, stack: contextlib.AsyncExitStack, rng: random.Random
) -> tuple[str, str]:
    """(URL, its password) for the system, wrong the way ``start.database`` says."""
    problem: DatabaseProblem | None = start.database
    # A password shaped like a real one, drawn from the seed.
    password = f"pw-{rng.getrandbits(96):024x}"
    if problem in ("wrong-password", "unknown-database"):
        cluster = await shared_cluster()
        if problem == "wrong-password":
            return cluster.url_for("postgres", password=password), password
        real = cluster.password or ""
        return cluster.url_for(f"squall_missing_{rng.getrandbits(32):08x}"), real
    if problem == "not-answering":
        port = stack.enter_context(_listening()).getsockname()[1]
    else:  # nothing-listening
        port = free_port()
    return f"postgresql://squall:{password}@127.0.0.1:{port}/squall", password


@contextlib.contextmanager
def _listening() -> Iterator[socket.socket]:
    """A loopback socket that listens and never accepts: a port taken, or a server that
    lets clients connect (the kernel completes the handshake) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


async def _run(
    argv: Sequence[str], env: Mapping[str, str], deadline: float
) -> tuple[int | None, str, float]:
    """(exit status or None, output, seconds) of ``argv``, stopped at ``deadline``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
    )
    assert process.stdout is not None
    reading = asyncio.create_task(process.stdout.read())
    status: int | None
    try:
        async with asyncio.timeout(deadline):
            status = await process.wait()
        seconds = loop.time() - started
    except TimeoutError:
        status, seconds = None, deadline
        process.terminate()
        try:
            async with asyncio.timeout(_STOP_GRACE_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    output = await reading
    return status, output.decode("utf-8", errors="replace"), seconds
