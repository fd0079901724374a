"""The README's curl walk-throughs, run verbatim against ``squall mock broker`` (KIS, and
``--api kiwoom``)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parents[2] / "README.md"


def walkthrough(marker: str = "walkthrough") -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- {marker}:start -->\s*```sh\n(.*?)```\s*<!-- {marker}:end -->", text, re.S
    )
    assert match, f"README.md lost its {marker} markers"
    return match.group(1)


def run_against_mock(squall_exe: str, script: str, *options: str) -> list[dict[str, object]]:
    """Start ``squall mock broker`` on the walk-through's port, run it, return its answers."""
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; ./scripts/test installs it (apt-get install curl)")
    port = re.search(r"BASE=http://127\.0\.0\.1:(\d+)", script)
    assert port, "the walk-through must set BASE to a loopback URL"
    broker = subprocess.Popen(
        [squall_exe, "mock", "broker", "--port", port.group(1), *options],
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
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_curl_walkthrough_works_verbatim(squall_exe: str) -> None:
    answers: list[dict[str, Any]] = run_against_mock(squall_exe, walkthrough())
    assert len(answers) == 3, answers
    price, order, balance = answers
    assert price["rt_cd"] == "0"
    assert int(price["output"]["stck_prpr"]) > 0
    assert (order["rt_cd"], order["msg_cd"]) == ("0", "APBK0013")
    assert balance["rt_cd"] == "0"
    assert [(row["pdno"], row["hldg_qty"]) for row in balance["output1"]] == [("005930", "10")]


def test_kiwoom_curl_walkthrough_works_verbatim(squall_exe: str) -> None:
    script = walkthrough("kiwoom-walkthrough")
    answers: list[dict[str, Any]] = run_against_mock(squall_exe, script, "--api", "kiwoom")
    assert len(answers) == 3, answers
    info, order, balance = answers
    assert (info["return_code"], info["stk_cd"]) == (0, "005930")
    assert int(str(info["cur_prc"]).lstrip("+-")) > 0
    assert order["return_code"] == 0
    assert str(order["ord_no"]).isdigit()
    assert balance["return_code"] == 0
    rows = balance["acnt_evlt_remn_indv_tot"]
    assert [(row["stk_cd"], int(row["rmnd_qty"])) for row in rows] == [("A005930", 10)]
