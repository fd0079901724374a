"""The README's curl walk-through, run verbatim against ``squall mock broker``."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S
    )
    assert match, "README.md lost its walk-through markers"
    return match.group(1)


def test_curl_walkthrough_works_verbatim(squall_exe: str) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; ./scripts/test installs it (apt-get install curl)")
    script = walkthrough()
    port = re.search(r"BASE=http://127\.0\.0\.1:(\d+)", script)
    assert port, "the walk-through must set BASE to a loopback URL"
    broker = subprocess.Popen(
        [squall_exe, "mock", "broker", "--port", port.group(1)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert broker.stdout is not None
        url = broker.stdout.readline().strip()
        assert url, f"the mock did not start: {broker.communicate(timeout=10)[1]}"
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    finally:
        broker.send_signal(signal.SIGINT)
        broker.communicate(timeout=15)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(answers) == 3, result.stdout
    price, order, balance = answers
    assert price["rt_cd"] == "0"
    assert int(price["output"]["stck_prpr"]) > 0
    assert (order["rt_cd"], order["msg_cd"]) == ("0", "APBK0013")
    assert balance["rt_cd"] == "0"
    assert [(row["pdno"], row["hldg_qty"]) for row in balance["output1"]] == [("005930", "10")]
