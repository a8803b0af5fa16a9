"""Progress on stderr, drawn only for a person watching a terminal.

Redirected or piped, stderr stays quiet, so scripts and logs see only the results.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30
# Redraws at most this often: a fast local upload would otherwise flood the terminal.
REDRAW_SECONDS = 0.1


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class ProgressLine:
    """One line that is redrawn in place (``\\r``) and ended by ``done``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.enabled = stream.isatty()
        self._drawn_at = 0.0
        self._width = 0

    def draw(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()

    def done(self, text: str) -> None:
        self.draw(text, force=True)
        if self.enabled:
            self._stream.write("\n")
            self._stream.flush()


def bar(label: str, done: int, total: int) -> str:
    """``label [#######.......]  45%  1.2 MiB / 2.6 MiB``"""
    fraction = min(1.0, done / total) if total else 1.0
    filled = round(WIDTH * fraction)
    return (
        f"{label} [{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%}  "
        f"{human_size(done)} / {human_size(total)}"
    )
