"""Results: rounds of A/B measurements, their median ratio, the table and results.json."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_PATH = Path(__file__).parent / "results.json"


@dataclass(frozen=True)
class Result:
    """One scenario on one store: the project's figure, the baseline's, and the verdict.

    ``value`` and ``baseline`` are medians over the rounds; ``ratio`` is the median of the
    per-round ratios (value / baseline), not the ratio of the medians, so that a round in
    which the machine was busy for both sides still compares like with like.
    """

    name: str
    value: float
    unit: str
    baseline: float
    ratio: float
    target: float
    ok: bool
    rounds: list[tuple[float, float]] = field(default_factory=list)
    note: str = ""
    # A latency: ``ok`` when ``ratio`` stays below ``target``.
    lower_is_better: bool = False


def median_ratio(rounds: Sequence[tuple[float, float]]) -> float:
    """The median of value / baseline over rounds of (value, baseline)."""
    if not rounds:
        raise ValueError("no rounds measured")
    return statistics.median(value / baseline for value, baseline in rounds)


def result(
    name: str,
    unit: str,
    rounds: Sequence[tuple[float, float]],
    *,
    target: float,
    note: str = "",
) -> Result:
    """A higher-is-better figure: ``ok`` when the median ratio reaches ``target``."""
    ratio = median_ratio(rounds)
    return Result(
        name=name,
        value=statistics.median(v for v, _ in rounds),
        unit=unit,
        baseline=statistics.median(b for _, b in rounds),
        ratio=ratio,
        target=target,
        ok=ratio >= target,
        rounds=[(v, b) for v, b in rounds],
        note=note,
    )


def p99(samples: Sequence[float]) -> float:
    """The 99th percentile (the one sample when there is only one)."""
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]


def under_bound(name: str, value: float, unit: str, bound: float, *, note: str) -> Result:
    """A latency held to a fixed bound, not to a measured baseline: the baseline column
    shows the bound, and ``ok`` means ``value < bound``."""
    return Result(
        name=name,
        value=value,
        unit=unit,
        baseline=bound,
        ratio=value / bound,
        target=1.0,
        ok=value < bound,
        lower_is_better=True,
        note=f"{note}; baseline column is the bound, ok when below it",
    )


def table(results: Sequence[Result]) -> str:
    """The results as a Markdown table (the README's Performance section pastes it)."""
    lines = [
        "| scenario | project | baseline | ratio | target | ok |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.value:.1f} {r.unit} | {r.baseline:.1f} {r.unit} "
            f"| {r.ratio:.2f} | {'<' if r.lower_is_better else '≥'} {r.target:.2f} "
            f"| {'yes' if r.ok else 'NO'} |"
        )
    return "\n".join(lines)


def write_results(results: Sequence[Result], path: Path = RESULTS_PATH) -> None:
    path.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
