"""A throwaway PostgreSQL server for tests and scenarios: ``postgres_cluster()``.

    with postgres_cluster() as pg:              # a pytest session fixture
        ...pg.url...                            # postgresql://postgres:PW@127.0.0.1:PORT/postgres
    async with postgres_cluster() as pg:        # inside a scenario's loop
        pg.stop(); ...; pg.start()              # a real outage, same port and data

The cluster is made from the machine's own binaries (``initdb``, ``pg_ctl``; Debian's
``postgresql-15`` by default, ``SQUALL_PG_BIN`` to point elsewhere) in a fresh directory
under ``/tmp``: listening on 127.0.0.1 only, on a free port, where TCP clients log in with a
password made for the cluster (as on a real server, so a scenario can give a wrong one, and
a leaked password shows up in what is printed; the socket in the directory trusts), with
durability switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``) because
nothing in it needs to survive a crash. Leaving the context always stops the server and
removes the directory, whatever happened (a failed start, an exception, Ctrl-C); an
``atexit`` hook catches clusters whose owner never left its context.

initdb refuses to run as root, so as root the binaries run as the ``postgres`` user
(``runuser -u postgres --``) and the directory is handed to that user.

With ``DATABASE_URL`` set, no cluster is made: the object stands for that existing server
(a staging database), and ``stop()``/``start()`` refuse, since an outage there is not ours
to cause. URLs are printed only through ``redact_url()``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from harness.clock import realtime_guard
from harness.ports import free_port
from system.storage import redact_url  # the system's: harness may use it, and it masks more

DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
BIN_VARIABLE = "SQUALL_PG_BIN"
URL_VARIABLE = "DATABASE_URL"
DEBIAN_PACKAGE = "postgresql-15"
SERVER_USER = "postgres"

_START_TIMEOUT_S = 30
_STOP_TIMEOUT_S = 30
_LOG_TAIL_LINES = 20
_PORT_ATTEMPTS = 3

T = TypeVar("T")


class PostgresClusterError(RuntimeError):
    """The cluster could not be made, started, stopped or used; the message says why."""


class PostgresNotInstalled(PostgresClusterError):
    """The PostgreSQL server binaries are not where Squall looks for them."""


def postgres_cluster(
    *, bin_dir: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> PostgresCluster:
    """A throwaway cluster, or the server ``DATABASE_URL`` names when it is set.

    ``bin_dir`` overrides ``SQUALL_PG_BIN``, which overrides ``/usr/lib/postgresql/15/bin``.
    Nothing starts until the context is entered (or ``start()`` is called).
    """
    env = os.environ if environ is None else environ
    external = env.get(URL_VARIABLE, "").strip()
    if external:
        return PostgresCluster(external_url=external)
    return PostgresCluster(bin_dir=bin_dir if bin_dir is not None else env.get(BIN_VARIABLE))


class PostgresCluster:
    """One PostgreSQL server: a throwaway cluster we run, or an existing one (``external_url``).

    Every method is synchronous (pytest fixtures, ``with``); the ``a``-prefixed twins and
    ``async with`` run them in a thread so a running event loop is not blocked.
    """

    def __init__(
        self, *, bin_dir: Path | str | None = None, external_url: str | None = None
    ) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir else DEFAULT_BIN
        self.external_url = external_url
        self.base_dir: Path | None = None
        self._port: int | None = None
        # The postgres user's password over TCP; made anew for every throwaway cluster.
        self._password = secrets.token_urlsafe(24)
        self._lock = threading.RLock()  # start/stop/close may race from threads (a* twins)
        self._closed = False
        self._has_started = False
        if external_url is not None:
            try:
                parts = urlsplit(external_url)
                self._port = parts.port or 5432
            except ValueError as exc:  # e.g. a port that is not a number
                raise PostgresClusterError(
                    f"{URL_VARIABLE} is not a usable PostgreSQL URL ({redact_url(external_url)}: "
                    f"{exc}); write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or "
                    f"unset it to use a throwaway cluster"
                ) from None

    # -- where ---------------------------------------------------------------------------

    @property
    def managed(self) -> bool:
        """Whether Squall runs this server (False: ``DATABASE_URL`` names an existing one)."""
        return self.external_url is None

    @property
    def host(self) -> str:
        if self.external_url is not None:
            return urlsplit(self.external_url).hostname or "localhost"
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresClusterError(
                "the cluster has no port yet: start it first (enter its context or call start())"
            )
        return self._port

    @property
    def url(self) -> str:
        """The DSN of the ``postgres`` database (it holds any password: never print it)."""
        if self.external_url is not None:
            return self.external_url
        return f"postgresql://{SERVER_USER}:{self._password}@{self.host}:{self.port}/postgres"

    @property
    def password(self) -> str | None:
        """The password in ``url`` (None when it has none): what must never be printed."""
        return urlsplit(self.url).password

    def url_for(
        self, database: str, *, address: str | None = None, password: str | None = None
    ) -> str:
        """The DSN of ``database`` on this server; with ``address`` (``HOST:PORT``, e.g. a
        proxy in front of the server), the DSN that reaches it there, as the same user; with
        ``password``, that user with this password instead (a wrong one, to be refused)."""
        parts = urlsplit(self.url)._replace(path=f"/{database}")
        credentials, at, where = parts.netloc.rpartition("@")
        if password is not None:
            user = credentials.partition(":")[0] if at else SERVER_USER
            credentials, at = f"{user}:{password}", "@"
        if address is not None:
            where = address
        return urlunsplit(parts._replace(netloc=f"{credentials}{at}{where}"))

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def log_path(self) -> Path:
        """The server's log (what a failed start quotes the end of)."""
        return self._base() / "postgres.log"

    @property
    def running(self) -> bool:
        """Whether our server is up (its postmaster.pid exists); an external one: True."""
        if not self.managed:
            return True
        return self.base_dir is not None and (self.data_dir / "postmaster.pid").exists()

    def __repr__(self) -> str:
        if not self.managed:
            return f"<PostgresCluster external {redact_url(self.url)}>"
        where = f"127.0.0.1:{self._port}" if self._port else "not started"
        return f"<PostgresCluster {where} {'running' if self.running else 'stopped'}>"

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (making the cluster the first time); a running one stays so.

        A restart keeps the port and the data. Raises ``PostgresNotInstalled`` without the
        binaries, ``PostgresClusterError`` (with the end of the server log) on a failed start.
        """
        self._require_managed("start")
        with self._lock:
            if self._closed:
                raise PostgresClusterError(
                    "this cluster was closed and its directory removed; make a new one"
                )
            if self.base_dir is None:
                self._create()
            if self.running:
                return
            self._start_server()

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are cut, as in a real outage)."""
        self._require_managed("stop")
        with self._lock:
            self._stop_server()

    def close(self) -> None:
        """Stop the server and remove its directory. Idempotent; a no-op when external."""
        if not self.managed:
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._stop_server()
            finally:
                if self.base_dir is not None:
                    shutil.rmtree(self.base_dir, ignore_errors=True)
                _live.discard(self)

    def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        """Create database ``name`` (owned by the URL's user); returns its DSN."""
        _run_in_fresh_loop(self.acreate_database(name, exist_ok=exist_ok))
        return self.url_for(name)

    async def acreate_database(self, name: str, *, exist_ok: bool = False) -> str:
        """``create_database`` for a caller inside an event loop."""
        quoted = _identifier(name)
        try:
            await self._execute(f"create database {quoted}", f"create database {name!r}")
        except asyncpg.exceptions.DuplicateDatabaseError:
            if not exist_ok:
                raise PostgresClusterError(
                    f"database {name!r} already exists on {redact_url(self.url)}; pick another "
                    "name or pass exist_ok=True"
                ) from None
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, cutting off its sessions (a test's cleanup)."""
        _run_in_fresh_loop(self.adrop_database(name))

    async def adrop_database(self, name: str) -> None:
        """``drop_database`` for a caller inside an event loop."""
        sql = f"drop database if exists {_identifier(name)} with (force)"
        await self._execute(sql, f"drop database {name!r}")

    async def _execute(self, sql: str, doing: str) -> None:
        """Run ``sql`` in the server's maintenance database. A server that cannot be reached
        or that refuses raises ``PostgresClusterError`` saying where and what to do
        (``DuplicateDatabaseError`` passes through: the caller decides about it).
        Every wait on the server is held in the loop's ``realtime_guard()``, so the
        connect timeout holds on virtual time too."""
        where, advice = redact_url(self.url), self._advice()
        with realtime_guard():
            try:
                conn = await asyncpg.connect(self.url, timeout=10)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise PostgresClusterError(
                    f"cannot connect to PostgreSQL at {where} to {doing} "
                    f"({type(exc).__name__}: {exc}); {advice}"
                ) from None
            try:
                await conn.execute(sql)
            except asyncpg.exceptions.DuplicateDatabaseError:
                raise
            except asyncpg.PostgresError as exc:
                raise PostgresClusterError(
                    f"PostgreSQL at {where} refused to {doing} "
                    f"({type(exc).__name__}: {exc}); {advice}"
                ) from None
            finally:
                await conn.close()

    def _advice(self) -> str:
        if not self.managed:
            return (
                f"check {URL_VARIABLE} (the server must be up, and its user allowed to create "
                "databases), or unset it to use a throwaway cluster"
            )
        # A cluster never started has no port: ``url`` has already said to start it.
        return f"is the throwaway cluster running? Its log is {self.log_path}"

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> PostgresCluster:
        if self.managed:
            try:
                self.start()
            except BaseException:  # also Ctrl-C half-way through initdb
                self.close()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> PostgresCluster:
        if self.managed:
            try:
                await self.astart()
            except BaseException:
                # The thread may still be starting it: close() takes the same lock, so it
                # runs after start() finished, and stops what start() left running.
                self.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        except asyncio.CancelledError:
            self.close()  # waits for the thread's close (same lock), then finds it done
            raise

    # -- the binaries --------------------------------------------------------------------

    def _require_managed(self, action: str) -> None:
        if not self.managed:
            raise PostgresClusterError(
                f"cannot {action} {redact_url(self.url)}: it is an existing server named by "
                f"{URL_VARIABLE}, which Squall does not control — unset {URL_VARIABLE} to run "
                "tests that stop and start the database on a throwaway cluster"
            )

    def _base(self) -> Path:
        if self.base_dir is None:
            raise PostgresClusterError("the cluster has no directory yet: start it first")
        return self.base_dir

    def _binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PostgresNotInstalled(
                f"PostgreSQL server binary {path} not found: install the Debian package "
                f"{DEBIAN_PACKAGE} (apt-get install -y {DEBIAN_PACKAGE}, or "
                f"scripts/system-deps {DEBIAN_PACKAGE}), or set {BIN_VARIABLE} to the directory "
                f"that holds initdb and pg_ctl (e.g. /usr/lib/postgresql/16/bin), or set "
                f"{URL_VARIABLE} to use an existing server"
            )
        return path

    def _as_server_user(self) -> list[str]:
        """The command prefix that runs a binary as a user initdb accepts."""
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresClusterError(
                "running as root, and initdb refuses root, but `runuser` (util-linux) is "
                "missing to run it as the postgres user: install util-linux, or run as "
                "another user"
            )
        return [runuser, "-u", SERVER_USER, "--"]

    def _run(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*self._as_server_user(), str(self._binary(name)), *args]
        result = subprocess.run(
            command,
            cwd=self.base_dir,  # the server user may not be allowed into the caller's cwd
            capture_output=True,
            text=True,
            # initdb checks the locale it is given; an odd LC_ALL from the caller breaks it.
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
            check=False,
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise PostgresClusterError(
                f"{name} failed with exit status {result.returncode} in {self.base_dir}:\n{output}"
            )
        return result

    def _create(self) -> None:
        # Fail on missing binaries before making anything.
        for name in ("initdb", "pg_ctl"):
            self._binary(name)
        server_user = self._server_user_ids()
        base = Path(tempfile.mkdtemp(prefix="squall-pg-", dir="/tmp"))
        self.base_dir = base
        _live.add(self)
        if server_user is not None:
            os.chown(base, *server_user)
        # initdb reads the password from a file the server user can read; gone once used.
        password_file = base / "password"
        password_file.write_text(self._password, encoding="utf-8")
        password_file.chmod(0o600)
        if server_user is not None:
            os.chown(password_file, *server_user)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SERVER_USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={password_file}",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            password_file.unlink(missing_ok=True)
        self._port = free_port()
        self._write_settings(self._port)

    def _server_user_ids(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresClusterError(
                f"running as root, and initdb refuses root, but there is no {SERVER_USER!r} "
                f"user to run it as: install {DEBIAN_PACKAGE} (it creates the user) or run as "
                "another user"
            ) from None
        return entry.pw_uid, entry.pw_gid

    def _write_settings(self, port: int) -> None:
        # In the config file rather than on pg_ctl's command line: a restart picks them up
        # as they are, and nothing needs shell quoting. Later lines win, so a new port
        # after a clash is one more line.
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{self._base()}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"\n# Squall's throwaway cluster\n{lines}")

    def _start_server(self) -> None:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "start",
                check=False,
            )
            if result.returncode == 0:
                self._has_started = True
                return
            log = self._log_tail()
            # The free port was only free when we looked: another process may have taken
            # it since. A fresh port is fine for a first start; a restart must keep its own.
            if "could not bind" in log and attempt < _PORT_ATTEMPTS and not self._has_started:
                self._port = free_port()
                self._write_settings(self._port)
                continue
            output = (result.stdout + result.stderr).strip()
            raise PostgresClusterError(
                f"PostgreSQL did not start on 127.0.0.1:{self._port} (pg_ctl exit status "
                f"{result.returncode}: {output}); the end of {self.log_path}:\n{log}"
            )

    def _stop_server(self) -> None:
        if not self.running:
            return
        data = str(self.data_dir)
        result = self._run(
            "pg_ctl",
            "-D",
            data,
            "-m",
            "fast",
            "-w",
            "-t",
            str(_STOP_TIMEOUT_S),
            "stop",
            check=False,
        )
        if result.returncode == 0 or not self.running:
            return
        result = self._run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
        if result.returncode == 0 or not self.running:
            return
        # Last resort, for a postmaster pg_ctl cannot stop: the pid is the file's first line.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(lines[-_LOG_TAIL_LINES:])


def _identifier(name: str) -> str:
    """``name`` quoted as an SQL identifier (database names cannot be query parameters)."""
    if not name or len(name.encode()) > 63 or "\x00" in name:
        raise PostgresClusterError(
            f"database name {name!r} is not usable: give 1 to 63 bytes without NUL"
        )
    return '"' + name.replace('"', '""') + '"'


def _run_in_fresh_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion in a new loop on another thread: callable from sync
    code whether or not the calling thread already runs a loop."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="squall-pg") as pool:
        return pool.submit(asyncio.run, coroutine).result()


# Clusters whose directory exists; stopped at interpreter exit if their owner never did
# (strong references: a cluster dropped without close() must still be found).
_live: set[PostgresCluster] = set()


@atexit.register
def _close_leftovers() -> None:
    for cluster in list(_live):
        with contextlib.suppress(Exception):
            cluster.close()
