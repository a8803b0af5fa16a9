"""The benchmark's arithmetic and its results file (the figures themselves are not tested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import median_ratio, result, table, write_results


def test_the_ratio_is_the_median_of_the_per_round_ratios() -> None:
    # Ratios 0.5, 1.0 and 2.0: the median is 1.0, though the medians' ratio is 20 / 20.
    assert median_ratio([(10, 20), (20, 20), (40, 20)]) == 1.0
    assert median_ratio([(10, 20), (30, 20)]) == 1.0


def test_no_rounds_is_an_error_not_a_ratio() -> None:
    with pytest.raises(ValueError, match="no rounds"):
        median_ratio([])


def test_a_result_is_ok_when_its_ratio_reaches_the_target() -> None:
    assert result("x", "ops/s", [(9, 10)], target=0.9).ok
    assert not result("x", "ops/s", [(8, 10)], target=0.9).ok


def test_results_are_written_as_a_list_of_objects_with_the_documented_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.json"
    write_results(
        [result("trigger (sqlite)", "starts/s", [(90, 100), (110, 100)], target=0.9)], path
    )
    [written] = json.loads(path.read_text())
    assert {"name", "value", "unit", "baseline", "ratio", "target", "ok"} <= written.keys()
    assert written["value"] == 100
    assert written["ratio"] == pytest.approx(1.0)


def test_the_table_names_every_scenario() -> None:
    text = table([result("ingest (postgres)", "uploads/s", [(50, 100)], target=0.4)])
    assert "ingest (postgres)" in text
    assert "0.50" in text
