"""The load shapes' schedules (load/shapes.py), second by second, without Locust running."""

from __future__ import annotations

import pytest

from load.shapes import LoadShapeError, from_env, plan, settings


def users(shape: str, peak: int, duration: float) -> list[int | None]:
    schedule = plan(shape, peak, duration)
    return [None if (step := schedule(t)) is None else step[0] for t in range(int(duration) + 1)]


def test_ramp_climbs_in_steps_then_holds_the_peak() -> None:
    seen = users("ramp", 20, 100)
    assert seen[0] == 4
    assert seen == [*sorted(seen[:-1]), None]  # never down until the end
    assert seen[59] == 20
    assert set(seen[60:100]) == {20}
    assert seen[100] is None


def test_spike_jumps_to_the_peak_in_the_middle_and_comes_back() -> None:
    seen = users("spike", 20, 100)
    assert set(seen[:35]) == {4}
    assert set(seen[35:65]) == {20}
    assert set(seen[65:100]) == {4}
    assert seen[100] is None


def test_soak_holds_half_the_peak_to_the_end() -> None:
    seen = users("soak", 20, 100)
    assert set(seen[:100]) == {10}
    assert seen[100] is None


def test_no_shape_without_the_variable_and_a_clear_error_for_a_wrong_one() -> None:
    assert settings({}) is None
    assert from_env({}) is None
    assert settings({"SQUALL_LOAD_SHAPE": "spike", "SQUALL_LOAD_USERS": "50"}) == ("spike", 50, 60)
    with pytest.raises(LoadShapeError, match="use one of ramp, spike, soak"):
        from_env({"SQUALL_LOAD_SHAPE": "wave"})
    with pytest.raises(LoadShapeError, match="SQUALL_LOAD_USERS='many'"):
        settings({"SQUALL_LOAD_SHAPE": "ramp", "SQUALL_LOAD_USERS": "many"})


def test_the_pure_parts_do_not_import_locust() -> None:
    # Importing locust monkey-patches the process for gevent: sockets, threads, ssl. The
    # schedules and the thresholds are imported by tests that run asyncio, so they must not.
    import subprocess
    import sys

    probe = "import sys, load.shapes, load.thresholds; print('locust' in sys.modules)"
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert answer.stdout.strip() == "False", answer.stderr
