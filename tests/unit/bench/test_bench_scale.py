"""The cost curves' output (harness/bench_scale.py): the JSON the plot is drawn from, and the
PNG itself, from made-up points (the measuring is nox -s bench's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import bench_scale
from harness.bench_scale import Curve, Point, plot


def curves() -> list[Curve]:
    return [
        Curve("a", "clients", "req/s", "system", "baseline", [Point(1, 10, 20), Point(10, 8, 19)]),
        Curve("b", "bursts", "×", "storm", "ceiling", [Point(100, 300, 900)], target=300.0),
    ]


def test_the_plot_is_a_png_with_a_panel_per_curve(tmp_path: Path) -> None:
    path = plot(curves(), tmp_path / "scale.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    assert width == 1500  # three panels a row, 5 inches each at 100 dpi


def test_the_results_are_written_as_json_and_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_scale, "OUT", tmp_path)
    data, image = bench_scale.write_results(curves())
    written = json.loads(data.read_text())
    assert written[1]["points"] == [{"size": 100, "value": 300, "baseline": 900}]
    assert written[1]["target"] == 300.0
    assert image.exists()


def test_the_fanout_curve_takes_the_best_run_per_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_scale, "OUT", tmp_path)
    assert bench_scale._fanout_curve() is None  # the realtime part did not run
    runs = [
        {"server": "gateway", "clients": 10, "per_second": 100.0},
        {"server": "gateway", "clients": 10, "per_second": 150.0},
        {"server": "websockets", "clients": 10, "per_second": 300.0},
    ]
    (tmp_path / "realtime.json").write_text(json.dumps({"fanout_runs": runs}))
    curve = bench_scale._fanout_curve()
    assert curve is not None
    assert curve.points == [Point(10, 150.0, 300.0)]
