"""``squall`` with one protection switched off: the weakened systems the start-up scenarios
must catch (see test_startup_scenarios.py). Not a test module; run as

    python weakened_squall.py WEAKENING SQUALL-ARGUMENTS...

- ``unguarded``: a server's start-up errors escape the command (a traceback and exit 1)
  instead of exiting 2 with a message that says what to do;
- ``unmasked``: the database URL is shown as given, password and all.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any


def _unguarded(main: Coroutine[Any, Any, None], ports: object) -> None:
    asyncio.run(main)


def run() -> None:
    weakening = sys.argv.pop(1)
    from harness import cli

    if weakening == "unguarded":
        cli._serve_until_interrupted = _unguarded  # type: ignore[assignment]
    elif weakening == "unmasked":
        from system.storage import config

        config.redact_url = lambda url: url
    else:
        sys.exit(f"unknown weakening {weakening!r}: unguarded or unmasked")
    cli.main()


if __name__ == "__main__":
    run()
