"""The benchmark's pictures: samples kept across runs, one PNG per kind recorded."""

from __future__ import annotations

import json
from pathlib import Path

from bench import plots
from bench.e2e import text


def test_recording_samples_keeps_those_of_other_scenarios_and_stores(tmp_path: Path) -> None:
    data = tmp_path / "plot-data.json"
    plots.record("lag", "sqlite", [1.0, 2.0], data)
    plots.record("lag", "postgres", [3.0], data)
    plots.record("scale", "sqlite", {"pipeline worker": [100.0], "direct starts": [90.0]}, data)
    plots.record("lag", "sqlite", [5.0], data)

    assert json.loads(data.read_text()) == {
        "lag": {"sqlite": [5.0], "postgres": [3.0]},
        "scale": {"sqlite": {"pipeline worker": [100.0], "direct starts": [90.0]}},
    }


def test_a_png_is_drawn_for_each_kind_of_samples_recorded(tmp_path: Path) -> None:
    data = tmp_path / "plot-data.json"
    assert plots.draw(data, tmp_path) == []

    plots.record(
        "scale", "postgres", {"pipeline worker": [100.0, 110.0], "direct starts": [95.0]}, data
    )
    assert plots.draw(data, tmp_path) == [tmp_path / "scale.png"]

    plots.record("lag", "sqlite", [10.0, 20.0, 30.0], data)
    written = plots.draw(data, tmp_path)

    assert written == [tmp_path / "lag.png", tmp_path / "scale.png"]
    assert all(png.read_bytes().startswith(b"\x89PNG") for png in written)


def test_end_to_end_uploads_are_small_text_files_that_never_repeat() -> None:
    files = [text(i) for i in range(100)]

    assert len(set(files)) == len(files)
    assert all(len(f) < 2048 for f in files)
    assert all(f.decode("ascii").count(".") >= 10 for f in files)  # sentences to summarize
