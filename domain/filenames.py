"""The display name an upload keeps: the client's filename made safe to store and show."""

from __future__ import annotations

import re
import unicodedata

MAX_FILENAME_LENGTH = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def _invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")


def sanitise_filename(name: str) -> str:
    """The client's filename reduced to a display name that is safe to store and show.

    Directory parts are dropped; control and invisible characters and path separators are
    replaced with "_"; the length is capped (keeping the extension). It is never used as a
    path: blobs get server names.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    # Invisible and control characters of any script (C1 controls, bidi overrides that make
    # "invoice\u202etxt.exe" display as "invoiceexe.txt", zero-width, line separators) are
    # turned into NUL first, so that _UNSAFE replaces each run of them with one "_".
    name = "".join("\x00" if _invisible(ch) else ch for ch in name)
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name or "unnamed"
