"""A throwaway Redis server for tests and scenarios: ``redis_server()``.

    with redis_server() as server:       # a pytest fixture
        ...server.url...                 # redis://127.0.0.1:PORT/0
        server.stop(); ...; server.start()   # a real outage, same port

The server is the machine's own ``redis-server`` (Debian's package; ``./scripts/system-deps
redis-server`` installs it), run in the foreground as a child process: on 127.0.0.1 only, on
a free port, with persistence off (``--save ''``, no append-only file), in a fresh directory
under ``/tmp`` that is removed afterwards. Leaving the context always stops it, whatever
happened; an ``atexit`` hook catches servers whose owner never left its context.

``stop()`` shuts the server down (every client sees its connection close); ``start()``
brings it back on the same port, empty. ``pause()``/``resume()`` freeze and thaw it
(SIGSTOP/SIGCONT): connections stay open and nothing answers, a silent outage.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from harness.ports import free_port

SERVER_BINARY = "redis-server"
DEBIAN_PACKAGE = "redis-server"

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 20


class RedisServerError(RuntimeError):
    """The Redis server could not be started or stopped; the text says why and what to do."""


class RedisNotInstalled(RedisServerError):
    pass


def redis_server(*, port: int | None = None) -> RedisServer:
    """A server to use as a context manager (``with``); see the module docstring."""
    return RedisServer(port=port)


class RedisServer:
    def __init__(self, *, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        assert self._dir is not None, "start the server first"
        return self._dir / "redis.log"

    def __repr__(self) -> str:
        return f"RedisServer({self.host}:{self.port}, {'running' if self.running else 'stopped'})"

    def start(self) -> None:
        """Start the server (again, after ``stop()``: same port, no data)."""
        if self.running:
            return
        binary = shutil.which(SERVER_BINARY)
        if binary is None:
            raise RedisNotInstalled(
                f"{SERVER_BINARY} is not installed on this machine: install the Debian package "
                f"with ./scripts/system-deps {DEBIAN_PACKAGE} (or apt-get install "
                f"{DEBIAN_PACKAGE}) and run again"
            )
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="squall-redis-"))
            atexit.register(self.close)
        command = [
            binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_until_answering()

    def stop(self) -> None:
        """Shut the server down; clients see their connections close."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def pause(self) -> None:
        """Freeze the server: connections stay open, and nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its directory (idempotent)."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            atexit.unregister(self.close)
            self._dir = None

    def __enter__(self) -> RedisServer:
        try:
            self.start()
        except BaseException:
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

    def _signal(self, number: signal.Signals) -> None:
        if self._process is None or self._process.poll() is not None:
            raise RedisServerError(f"the Redis server on port {self.port} is not running")
        os.kill(self._process.pid, number)

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._failed(f"it exited with status {self._process.returncode}")
            if _answers_ping(self.host, self.port):
                return
            time.sleep(0.01)
        self.stop()
        self._failed(f"it did not answer PING within {_START_TIMEOUT_S:.0f} s")

    def _failed(self, what: str) -> None:
        process, self._process = self._process, None
        stderr = b""
        if process is not None and process.stderr is not None:
            if process.poll() is not None:
                stderr = process.stderr.read()
            process.stderr.close()
        tail = stderr.decode(errors="replace").strip().splitlines()
        if self._dir is not None and self.log_path.exists():
            tail += self.log_path.read_text(errors="replace").strip().splitlines()
        shown = "\n  ".join(tail[-_LOG_TAIL_LINES:]) or "(nothing logged)"
        raise RedisServerError(
            f"redis-server on {self.host}:{self.port} failed to start: {what}. Its last words:"
            f"\n  {shown}\nIf the port is taken, run again (a free port is chosen each time)."
        )


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
