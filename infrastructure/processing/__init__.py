"""Turning an artifact's content into small facts and stored outputs.

Each content kind has an extractor (``extraction.EXTRACTORS``) that yields the document's
blocks (``blocks``) in order to a ``document.DocumentWriter``, which stores the plain text,
the Markdown (``markdown``), the chunks (``chunks``) and the page facts, and detects the
language (``language``). PDFs are parsed in a child process under CPU, memory and
wall-clock limits (``limits``, ``pdf``); text-like files are decoded and images inspected
in-process (``text``, ``image``), and summaries written by ``summarizer``. Failures the
content causes are raised as ``application.processing.UnprocessableContent`` with a
machine-readable reason.
"""
