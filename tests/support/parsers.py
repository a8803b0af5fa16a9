"""The parser processes under a process: its fork servers and the children they forked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psutil

from infrastructure.processing.forkserver import SERVER_MODULE


def fork_servers(process: psutil.Process) -> list[psutil.Process]:
    """The fork servers ``process`` started (they wait, warm, between documents)."""
    found = []
    for child in process.children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if SERVER_MODULE in child.cmdline():
                found.append(child)
    return found


def parser_children(process: psutil.Process) -> list[psutil.Process]:
    """The parser children at work under ``process``: one per document being parsed."""
    found = []
    for server in fork_servers(process):
        with contextlib.suppress(psutil.NoSuchProcess):
            found += server.children(recursive=True)
    return found


@contextlib.contextmanager
def no_parser_outlives() -> Iterator[None]:
    """Fails when the block leaves a process of its own behind, other than a fork server
    with no child (servers that session fixtures started may stay running too)."""
    this = psutil.Process()
    before = set(this.children(recursive=True))
    yield
    servers = set(fork_servers(this))
    assert set(this.children(recursive=True)) - before <= servers
    assert not parser_children(this)
