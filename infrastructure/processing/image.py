"""Images: their facts (dimensions, format, mode, frames) and their text, by OCR, frame by frame.

Decoding pixels is parsing untrusted input with native code (Pillow's decoders), so it
happens in the limited child (``limits.run_limited``), as PDF parsing does. The child
checks every frame's declared size against the pixel bound before decoding it, so a
decompression bomb costs only its header, and counts frames only up to the frame bound,
so a file declaring thousands of frames is refused before any is decoded. Each frame is a
page: a ``page`` block (``source`` "ocr" or "none", OCR's confidence), then the paragraphs
OCR read on it.

OCR takes seconds a frame, so a long multi-page TIFF could outlast a child's CPU or
wall-clock limit: the child stops itself between frames before it would (``ocr.Budget``)
and the parent starts a fresh one at the next frame, each within the limits a hostile file
gets. The frames' blocks are stored batch by batch and heartbeated as a PDF's pages are
(``pdf.PdfProgress``), so a retry goes on after the last stored batch. Wiring it in, with a
``DocumentWriter`` (``extraction.extract_image_content`` does)::

    with blob_store.open(location) as blob:
        image = extract_image(
            blob, limits=..., ocr=..., on_block=writer.add, blob_store=blob_store,
            resume_from=PdfProgress.from_details(details[0]) if details else None,
            heartbeat=lambda progress: activity.heartbeat(progress.to_details()),
        )
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from application.ports import BlobStore
from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.blocks import BadBlock, Block, check_block
from infrastructure.processing.limits import (
    INPUT_PATH,
    ChildFailed,
    Json,
    ProcessLimits,
    run_limited,
)
from infrastructure.processing.ocr import Budget, OcrOptions, page_allowance, page_and_paragraphs
from infrastructure.processing.options import DEFAULT_MAX_PIXELS
from infrastructure.processing.pdf import PdfProgress, all_stored, read_blocks, store_blocks

# The formats the service accepts (application.processing.IMAGE_TYPES); Pillow tries
# no other plugin on an upload, which keeps its attack surface to these parsers.
# What the fork server imports before forking this parser's children (the OCR engine's
# binding and Pillow's decoders): loaded once, shared, and not mapped anew inside a
# child's address-space limit.
FORK_SERVER_PRELOAD = ("PIL.Image", "PIL.ImageOps", "tesserocr")
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP")
DEFAULT_MAX_FRAMES = 1000
# The resolution assumed for an image that declares none (or a silly one): a scan's.
_ASSUMED_DPI = 300
_PLAUSIBLE_DPI = range(70, 2401)
# An image whose frames, after how many children, still have not all been read is stuck
# (a child that stops itself without reading a frame is caught at once).
_MAX_CHILDREN = 10_000
# Frames per stored batch at most (a batch is also closed every OcrOptions.batch_seconds).
_BATCH_FRAMES = 25


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    format: str
    mode: str
    frames: int = 1

    def to_details(self) -> dict[str, str | bool | int]:
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "mode": self.mode,
            "frames": self.frames,
        }


@dataclass(frozen=True)
class ImageExtraction:
    facts: ImageFacts
    # Frames (from 1) whose OCR reached its deadline: they keep what was read by then.
    timed_out_pages: tuple[int, ...] = ()
    # How many child processes read the frames (a long scan takes several).
    children: int = 1
    # The last progress: its stored batches are for a retry only (delete them once written).
    progress: PdfProgress | None = None


def extract_image(
    source: BinaryIO,
    *,
    limits: ProcessLimits,
    ocr: OcrOptions,
    on_block: Callable[[Block], None],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    blob_store: BlobStore | None = None,
    resume_from: PdfProgress | None = None,
    heartbeat: Callable[[PdfProgress], None] = lambda progress: None,
    scratch_dir: Path | None = None,
) -> ImageExtraction:
    """Reads an image's facts and hands ``on_block`` a page per frame with its OCR text.

    With a ``blob_store``, the frames' blocks are stored batch by batch (at least every
    ``ocr.batch_seconds``) and ``heartbeat`` gets the progress, as a PDF's pages
    (``pdf.PdfProgress``, its pages the frames): a retry passing it back as ``resume_from``
    goes on after the last stored batch, so a worker lost in the middle of a long scan costs
    only the frames since. ``heartbeat`` is also called every few seconds while a frame is
    read.

    Raises ``UnprocessableContent``: ``too_large`` for a frame over ``max_pixels``,
    ``too_many_pages`` for more than ``max_frames`` frames, ``corrupt`` for a file that is
    not an intact image in one of ``FORMATS``, ``timeout`` for a frame that outlasts the
    child's limits; ``ChildFailed`` for failures worth a retry.
    """
    progress = PdfProgress(page_count=0, next_page=0)
    if (
        resume_from is not None
        and blob_store is not None
        and all_stored(blob_store, resume_from.block_locations)
    ):
        progress = resume_from
        for location in progress.block_locations:
            for block in read_blocks(blob_store, location):
                on_block(block)
    batch = _Batch(blob_store, on_block, heartbeat, every=ocr.batch_seconds)
    facts: ImageFacts | None = None
    # The child reads only the file it is handed (INPUT_PATH; each child opens it anew).
    with _local_copy(source, scratch_dir) as path, path.open("rb") as file:
        for children in range(1, _MAX_CHILDREN + 1):
            first_frame = progress.next_page
            items = run_limited(
                read_frames,
                INPUT_PATH,
                ocr.to_json(),
                max_pixels,
                max_frames,
                first_frame,
                limits.cpu_seconds,
                limits.wall_seconds,
                limits=limits,
                # The progress as it is when the child goes quiet, not as it was here.
                on_wait=lambda: heartbeat(batch.progress or progress),  # noqa: B023
                input_file=file,
            )
            with closing(items):
                told = _facts(next(items, None))
                if facts is not None and told != facts:
                    raise ChildFailed(f"the image changed between children: {told} != {facts}")
                if first_frame and told.frames != progress.page_count:
                    raise ChildFailed(
                        f"resuming the frames of an image of {progress.page_count}, "
                        f"but it has {told.frames}"
                    )
                facts = told
                progress = PdfProgress(
                    page_count=facts.frames,
                    next_page=progress.next_page,
                    block_locations=progress.block_locations,
                    ocr_timed_out=progress.ocr_timed_out,
                )
                batch.start(progress)
                for item in items:
                    if isinstance(item, dict) and "stopped_at" in item:
                        # A child stops itself only after reading a frame.
                        if (
                            item["stopped_at"] != batch.next_frame
                            or first_frame == item["stopped_at"]
                        ):
                            raise ChildFailed(f"the parser stopped oddly: {item!r}")
                        break
                    batch.add(*_frame(item, batch.next_frame))
                progress = batch.flush()
            if progress.next_page >= facts.frames:
                return ImageExtraction(
                    facts=facts,
                    timed_out_pages=progress.ocr_timed_out,
                    children=children,
                    progress=progress,
                )
            if progress.next_page == first_frame:
                raise ChildFailed(f"the parser ended without reading frame {first_frame + 1}")
    raise ChildFailed(f"the image's frames were not all read after {_MAX_CHILDREN} children")


class _Batch:
    """Frames read but not yet stored: stored (with a blob store), heartbeated and handed
    on together, once ``every`` seconds have passed or ``_BATCH_FRAMES`` frames are in."""

    def __init__(
        self,
        blob_store: BlobStore | None,
        on_block: Callable[[Block], None],
        heartbeat: Callable[[PdfProgress], None],
        *,
        every: float,
    ) -> None:
        self._blob_store = blob_store
        self._on_block = on_block
        self._heartbeat = heartbeat
        self._every = every
        self.progress: PdfProgress | None = None
        self._blocks: list[Block] = []
        self._frames = 0
        self._timed_out: list[int] = []
        self._since = time.monotonic()

    def start(self, progress: PdfProgress) -> None:
        self.progress = progress
        self._since = time.monotonic()

    @property
    def next_frame(self) -> int:
        assert self.progress is not None
        return self.progress.next_page + self._frames

    def add(self, blocks: list[Block], timed_out: bool) -> None:
        if timed_out:
            self._timed_out.append(self.next_frame + 1)
        self._blocks.extend(blocks)
        self._frames += 1
        if self._frames >= _BATCH_FRAMES or time.monotonic() - self._since >= self._every:
            self.flush()

    def flush(self) -> PdfProgress:
        assert self.progress is not None
        if not self._frames:
            return self.progress
        stored = store_blocks(self._blob_store, self._blocks) if self._blob_store else None
        self.progress = PdfProgress(
            page_count=self.progress.page_count,
            next_page=self.progress.next_page + self._frames,
            block_locations=(*self.progress.block_locations, *([stored] if stored else [])),
            ocr_timed_out=(*self.progress.ocr_timed_out, *self._timed_out),
        )
        self._heartbeat(self.progress)
        for block in self._blocks:
            self._on_block(block)
        self._blocks, self._frames, self._timed_out = [], 0, []
        self._since = time.monotonic()
        return self.progress


def read_frames(
    path: str,
    ocr_json: Json,
    max_pixels: int,
    max_frames: int,
    start_frame: int,
    cpu_seconds: float,
    wall_seconds: float,
) -> Iterator[Json]:
    """Runs in the child: yields the image's facts, then ``{"frame", "blocks"}`` per frame
    from ``start_frame``; ``{"stopped_at": frame}`` when its limits would not see another
    frame through (the parent goes on in a fresh child)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from infrastructure.processing.ocr import recognise_image

    options = OcrOptions.from_json(ocr_json)
    budget = Budget(cpu_seconds=cpu_seconds, wall_seconds=wall_seconds)
    # Pillow refuses outright above twice its limit; below, this function's own check does.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(path, formats=FORMATS) as image:
            frames = _frame_count(image, max_frames)
            _check_size(image, max_pixels)
            yield ImageFacts(
                width=image.width,
                height=image.height,
                format=str(image.format),
                mode=image.mode,
                frames=frames,
            ).to_details()  # type: ignore[misc]
            if options.mode == "off":
                # The file's structure checked without decoding pixels (verify() must be
                # the first thing done with an opened image).
                with Image.open(path, formats=FORMATS) as again:
                    again.verify()
            for index in range(start_frame, frames):
                if options.mode == "off":
                    yield {
                        "frame": index,
                        "blocks": page_and_paragraphs(index + 1, "none", None, []),
                    }
                    continue
                if index > start_frame and not budget.allows(page_allowance(options)):
                    yield {"stopped_at": index}
                    return
                image.seek(index)
                _check_size(image, max_pixels)
                dpi = _dpi(image)
                width = image.width
                frame = _greyscale(image, ImageOps, options.max_pixels)
                # A JPEG decoded at a reduced size has fewer dots per inch.
                dpi = max(1, round(dpi * frame.width / width)) if frame.width != width else dpi
                page = recognise_image(frame, dpi=dpi, options=options)
                source = "ocr" if page.paragraphs else "none"
                yield {
                    "frame": index,
                    "blocks": page_and_paragraphs(
                        index + 1, source, page.confidence, page.paragraphs
                    ),
                    "timed_out": page.timed_out,
                }
    except Image.DecompressionBombError as err:
        raise UnprocessableContent(FailureReason.TOO_LARGE, str(err)) from None
    except UnidentifiedImageError:
        raise UnprocessableContent(
            FailureReason.CORRUPT, f"not an image in a supported format ({', '.join(FORMATS)})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Pillow reports a damaged file with any of these, SyntaxError included.
        raise UnprocessableContent(FailureReason.CORRUPT, f"damaged image: {err}") from None


def _frame_count(image: Any, max_frames: int) -> int:
    """The number of frames, refusing more than ``max_frames`` without walking further
    (``n_frames`` would walk a file's every frame, however many it declares)."""
    if not getattr(image, "is_animated", False):
        return 1
    frames = 1
    try:
        while True:
            image.seek(frames)
            frames += 1
            if frames > max_frames:
                raise UnprocessableContent(
                    FailureReason.TOO_MANY_PAGES,
                    f"the image has more than the {max_frames} frames allowed",
                )
    except EOFError:
        pass
    image.seek(0)
    return frames


def _check_size(image: Any, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise UnprocessableContent(
            FailureReason.TOO_LARGE,
            f"the image has {width * height} pixels, more than the {max_pixels} allowed",
        )


def _greyscale(image: Any, image_ops: Any, max_pixels: int) -> Any:
    """The current frame as 8-bit greyscale, upright, transparency on white."""
    if image.format == "JPEG":
        # Decodes at a reduced size (a power of two) straight into greyscale.
        scale = min(1.0, (max_pixels / (image.width * image.height)) ** 0.5)
        image.draft("L", (int(image.width * scale), int(image.height * scale)))
    frame = image_ops.exif_transpose(image) or image
    if frame.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return frame.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if frame.mode == "P" and "transparency" in frame.info:
        frame = frame.convert("RGBA")
    if frame.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        from PIL import Image

        background = Image.new("RGBA", frame.size, (255, 255, 255, 255))
        frame = Image.alpha_composite(background, frame.convert("RGBA"))
    return frame.convert("L")


def _dpi(image: Any) -> int:
    dpi = image.info.get("dpi")
    try:
        value = round(float(dpi[0]))
    except (TypeError, ValueError, IndexError, OverflowError):
        return _ASSUMED_DPI
    return value if value in _PLAUSIBLE_DPI else _ASSUMED_DPI


def _facts(item: Json) -> ImageFacts:
    # The child parses hostile input, so what it sends is checked, not trusted.
    try:
        assert isinstance(item, dict)
        facts = ImageFacts(
            width=_positive(item["width"]),
            height=_positive(item["height"]),
            format=str(item["format"]),
            mode=str(item["mode"]),
            frames=_positive(item["frames"]),
        )
    except (AssertionError, KeyError, TypeError):
        raise ChildFailed(f"the parser sent no image facts: {item!r}") from None
    if facts.format not in FORMATS:
        raise ChildFailed(f"the parser reported a format it may not read: {facts.format!r}")
    return facts


def _frame(item: Json, frame: int) -> tuple[list[Block], bool]:
    """A frame's checked blocks, and whether its OCR timed out."""
    if not (
        isinstance(item, dict)
        and item.get("frame") == frame
        and isinstance(blocks := item.get("blocks"), list)
        and blocks
        and isinstance(timed_out := item.get("timed_out", False), bool)
    ):
        raise ChildFailed(f"the parser sent an unexpected message for frame {frame + 1}")
    try:
        checked = [check_block(block) for block in blocks]
    except BadBlock as err:
        raise ChildFailed(f"the parser sent a bad block for frame {frame + 1}: {err}") from None
    first = checked[0]
    if first["type"] != "page" or first["number"] != frame + 1:
        raise ChildFailed(f"frame {frame + 1} does not start with its page block")
    if any(block["type"] == "page" for block in checked[1:]):
        raise ChildFailed(f"frame {frame + 1} holds more than one page")
    return checked, timed_out


def _positive(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(value)
    return value


@contextmanager
def _local_copy(source: BinaryIO, directory: Path | None) -> Iterator[Path]:
    with tempfile.NamedTemporaryFile(prefix="extract-", suffix=".img", dir=directory) as copy:
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield Path(copy.name)
