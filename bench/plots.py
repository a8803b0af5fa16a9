"""The bench's pictures, next to results.json: the lag distribution, the backlog drain's sides.

Scenarios ``record`` their samples in ``plot-data.json`` (kept across runs, so a run of one
scenario redraws the others' last samples too); ``draw`` turns it into PNGs.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt

HERE = Path(__file__).parent
DATA_PATH = HERE / "plot-data.json"


def record(kind: str, store: str, samples: Any, path: Path = DATA_PATH) -> None:
    """Keeps ``samples`` of scenario ``kind`` on ``store`` for ``draw`` (replacing older ones)."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(kind, {})[store] = samples
    path.write_text(json.dumps(data) + "\n")


def draw(path: Path = DATA_PATH, out: Path = HERE) -> list[Path]:
    """Writes ``lag.png`` and ``scale.png`` into ``out`` from what was recorded (each only
    when there is something to draw); returns the files written."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    written = []
    if lag := data.get("lag"):
        _lag(lag, out / "lag.png")
        written.append(out / "lag.png")
    if scale := data.get("scale"):
        _scale(scale, out / "scale.png")
        written.append(out / "scale.png")
    return written


def _lag(samples: dict[str, list[float]], out: Path) -> None:
    """Upload accepted → run started, per store: a histogram and the sorted samples (CDF)."""
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    for store, lags in sorted(samples.items()):
        hist.hist(lags, bins=40, alpha=0.6, label=f"{store} ({len(lags)})")
        ordered = sorted(lags)
        cdf.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=store)
    hist.set(title="lag: upload accepted → run started", xlabel="ms", ylabel="uploads")
    cdf.set(title="cumulative", xlabel="ms", ylabel="fraction of uploads")
    cdf.axhline(0.99, color="grey", linewidth=0.8, linestyle=":")
    for ax in (hist, cdf):
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _scale(samples: dict[str, dict[str, list[float]]], out: Path) -> None:
    """Starts per second of each side of the backlog drain, per store (one point per round,
    and medians); ``samples`` maps a store to {side: starts/s of each round}."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sides = sorted({side for by_side in samples.values() for side in by_side}, reverse=True)
    for store, by_side in sorted(samples.items()):
        shown = [side for side in sides if side in by_side]
        line = ax.plot(
            [sides.index(side) for side in shown],
            [statistics.median(by_side[side]) for side in shown],
            marker="o",
            label=store,
        )
        for side in shown:
            ax.scatter(
                [sides.index(side)] * len(by_side[side]),
                by_side[side],
                color=line[0].get_color(),
                alpha=0.4,
            )
    ax.set_xticks(range(len(sides)), sides)
    ax.set(
        title="scale: draining a backlog, each side on a fresh dev server",
        ylabel="starts/s",
        xlim=(-0.5, len(sides) - 0.5),
        ylim=(0, None),
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
