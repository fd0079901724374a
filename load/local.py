"""``python -m load.local``: what ``nox -s load`` runs — a short, bounded Locust run against
a local stack, failing on the thresholds.

1. ``squall up`` on a free port: the mock broker and feed, and the system against them with
   a trading desk in paper mode and a fresh operator token (passed through the
   environment, never on a command line, never printed).
2. Locust, headless, once in one process and once distributed (``--processes``: a master
   and that many workers) following a load shape (``spike`` unless ``--shape`` says), each
   with the CSV and HTML reports in ``build/load/``.
3. The stack is stopped whatever happened; the exit code is non-zero if any run failed its
   thresholds (``load/thresholds.py``) or the stack would not start.

``--users``, ``--duration`` and ``--workers`` size the runs; ``--shape ramp|spike|soak``
uses a load shape (``load/shapes.py``) instead of a constant user count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "load"
LOCUSTFILE = ROOT / "load" / "locustfile.py"
_READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LocalStack:
    host: str  # the gateway: http://127.0.0.1:PORT
    log: Path  # squall up's output: the URLs it printed, then its log


@contextlib.contextmanager
def local_stack(token: str, seed: int = 1) -> Iterator[LocalStack]:
    """``squall up`` on a free port with a paper-trading desk and ``token`` as the operator
    token; stopped on exit whatever happened. ``StackNotReady`` if it won't serve."""
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SQUALL_GATEWAY_OPERATOR_TOKEN": token, "SQUALL_TRADING_MODE": "paper"}
    log_path = OUT / f"stack-{port}.log"
    with log_path.open("w") as log:
        stack = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "up", "--port", str(port), "--seed", str(seed)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        try:
            if not _ready(host, stack):
                raise StackNotReady(
                    f"the local stack did not serve {host}/health within "
                    f"{_READY_TIMEOUT_S:.0f} s; see {log_path}"
                )
            yield LocalStack(host, log_path)
        finally:
            _stop(stack)


class StackNotReady(RuntimeError):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.local", description=__doc__)
    parser.add_argument("--users", type=_positive, default=20, help="peak users (default 20)")
    parser.add_argument(
        "--duration", type=_positive, default=15, help="seconds per run (default 15)"
    )
    parser.add_argument("--workers", type=_positive, default=2, help="distributed run's workers")
    parser.add_argument("--shape", choices=("ramp", "spike", "soak"), help="a load shape")
    args = parser.parse_args(argv)
    token = secrets.token_urlsafe(24)
    try:
        with local_stack(token) as stack:
            print(f"load: a local stack on {stack.host} (its log: {stack.log})", flush=True)
            failed = []
            # The distributed run follows a shape (spike unless told), so one CI run drives
            # a LoadTestShape through a master and its workers too.
            runs: list[tuple[str, list[str], str | None]] = [
                ("single", [], args.shape),
                ("distributed", ["--processes", str(args.workers)], args.shape or "spike"),
            ]
            for label, extra, shape in runs:
                how = f"a {shape} shape peaking at" if shape else "a constant"
                print(
                    f"load: {label} run, {how} {args.users} users for {args.duration} s",
                    flush=True,
                )
                code = run_locust(
                    stack.host,
                    token,
                    users=args.users,
                    duration_s=args.duration,
                    shape=shape,
                    report=label,
                    extra=extra,
                ).returncode
                print(f"load: the {label} run {'passed' if code == 0 else 'FAILED'}", flush=True)
                if code != 0:
                    failed.append(label)
    except StackNotReady as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    if failed:
        print(f"load: failed: {', '.join(failed)}; reports in {OUT}", file=sys.stderr)
        return 1
    print(f"load: every run held its thresholds; reports in {OUT}")
    return 0


def _positive(raw: str) -> int:
    """A whole number of at least 1, for argparse (which then names the option)."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of at least 1")
    return int(raw)


def run_locust(
    host: str,
    token: str,
    *,
    users: int,
    duration_s: int,
    shape: str | None = None,
    report: str = "run",
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    capture: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Locust, headless, against ``host``; its CSV and HTML reports as ``build/load/REPORT*``.
    ``env`` adds variables (thresholds, codes); ``capture`` keeps its output for a test."""
    variables = {**os.environ, **(env or {}), "SQUALL_LOAD_OPERATOR_TOKEN": token}
    sizing = ["-u", str(users), "-r", str(max(1, users // 2)), "-t", f"{duration_s}s"]
    if shape:
        variables |= {
            "SQUALL_LOAD_SHAPE": shape,
            "SQUALL_LOAD_USERS": str(users),
            "SQUALL_LOAD_DURATION_S": str(duration_s),
        }
        sizing = []
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", host,
        *sizing,
        "--csv", str(OUT / report),
        "--html", str(OUT / f"{report}.html"),
        "--only-summary",
        "--stop-timeout", "5",
        *extra,
    ]  # fmt: skip
    return subprocess.run(
        command,
        env=variables,
        cwd=ROOT,
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )


def _ready(host: str, stack: subprocess.Popen[bytes]) -> bool:
    """Whether the gateway answers /health (any verdict: it serves) before the deadline."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            return False
        try:
            if httpx.get(f"{host}/health", timeout=2).status_code in (200, 503):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop(stack: subprocess.Popen[bytes]) -> None:
    if stack.poll() is None:
        stack.send_signal(signal.SIGINT)  # as Ctrl-C: squall up tears everything down
        try:
            stack.wait(30)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()


if __name__ == "__main__":
    sys.exit(main())
