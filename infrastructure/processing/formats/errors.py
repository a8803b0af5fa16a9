"""What a format library's failure on a document means: the document cannot be read.

python-docx, openpyxl, python-pptx and odfpy raise whatever their code meets on a
document they cannot make sense of (``KeyError`` for a missing part, ``ValueError`` for a
bad attribute, ``AttributeError`` where an element they expect is absent, odfpy's
assertions). The same file fails the same way on every attempt, so each is refused as
``corrupt`` at once (one attempt, not a retry policy's worth), with the library's own
words kept in the message. A bug of ours would show there too, with its type.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from application.processing import FailureReason, UnprocessableContent


@contextmanager
def library_errors_are_corrupt(what: str) -> Iterator[None]:
    """Turns a library's exception inside the block into ``UnprocessableContent(CORRUPT)``
    saying that ``what`` (``"Word document"``) cannot be read."""
    try:
        yield
    except (UnprocessableContent, MemoryError):
        # Our own verdicts stand; running out of memory is the child's too_large.
        raise
    except Exception as err:
        detail = str(err).strip()[:300] or "no detail"
        raise UnprocessableContent(
            FailureReason.CORRUPT,
            f"not a readable {what} ({type(err).__name__}: {detail})",
        ) from None
