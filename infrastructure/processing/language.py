"""The language a document's text is written in, by py3langid (its model ships in the package).

py3langid is langid.py's maintained fork: a naive Bayes model over byte n-grams, fast
(milliseconds for the sample read here) and fully offline. Its model loads once per process
(half a second of CPU, about 75 MB resident), then serves every thread: classifying only
reads it. ``warm_up`` loads it in the background when a worker starts, so that the first
document does not wait for it.
"""

from __future__ import annotations

import threading
from typing import Any

# Enough text to tell a language reliably, and still milliseconds to classify.
SAMPLE_CHARS = 10_000
# Less than this many letters says too little (a title, a number, a scan's noise).
MIN_LETTERS = 20
# py3langid's normalised probability below which its best guess is no answer.
MIN_CONFIDENCE = 0.5

_lock = threading.Lock()
_identifier: Any = None


def detect_language(sample: str) -> str | None:
    """The ISO 639-1 code of ``sample``'s language, or None when it cannot be told.

    Only two-letter codes are answered: the model also knows languages that have none
    (and ``zxx``, "no linguistic content"), which are reported as None.
    """
    sample = sample[:SAMPLE_CHARS]
    if sum(character.isalpha() for character in sample) < MIN_LETTERS:
        return None
    language, confidence = _model().classify(sample)
    if confidence < MIN_CONFIDENCE or len(language) != 2 or not language.isalpha():
        return None
    return str(language)


def warm_up() -> None:
    """Starts loading the model in a background thread (once per process).

    Not a daemon: a process told to stop (SIGTERM) while the model loads waits the half
    second for it at exit, where a daemon thread still in native code while the
    interpreter finalizes could abort the process (SIGABRT, seen in the fault suite)."""
    if _identifier is None:
        threading.Thread(target=_model, name="language-model").start()


def _model() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import (  # type: ignore[import-untyped]
                MODEL_FILE,
                LanguageIdentifier,
            )

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier
