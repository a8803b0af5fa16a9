"""Turning an artifact's content into small facts and stored text.

PDFs are parsed in a child process under CPU, memory and wall-clock limits (``limits``,
``pdf``); text-like files are decoded and images inspected in-process (``text``,
``image``), and summaries written by ``summarizer``. Failures the content causes are
raised as ``application.processing.UnprocessableContent`` with a machine-readable reason.
"""
