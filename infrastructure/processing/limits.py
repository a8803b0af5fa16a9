"""Runs a parser of untrusted content in a child process under hard limits.

A hostile file can make a parser loop, allocate without bound or crash. So the parser
runs in a child process that sets its resource limits and confines itself (namespaces,
Landlock: ``sandbox.py``) before it reads a byte, while the worker enforces a wall-clock
deadline and has the child killed when it passes. All the worker takes from the child is
size-bounded JSON through a pipe (never a pickle: the child is the process a crafted file
may have taken over), so whatever the child does ends here as an ``UnprocessableContent``
or a ``ChildFailed``, never as a crash of the worker.

Only the limits set here blame the file (``UnprocessableContent``): the CPU limit and the
wall clock (``timeout``), the memory limit (``too_large``). A child that dies of a signal
without having reached one of them was killed by something else (the host's OOM killer,
an operator) or crashed in a way retrying may not repeat: ``ParserKilled``, worth a retry.

The child is forked from a warm fork server (``forkserver.py``): a fresh interpreter per
worker that imported the parsers once (``Preload``), so a document no longer pays an
interpreter's start and its imports (120-330 ms) but a fork (about 2 ms with the sandbox).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import IO, Any

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.forkserver import (
    DEFAULT_MODULES,
    HEAP_SLACK_BYTES,
    INPUT_PATH,
    MIB,
    ChildFailed,
    ForkedChild,
    ForkServer,
    Json,
    Preload,
    ServerGone,
    WarmUp,
    fork_server,
)

__all__ = [
    "DEFAULT_MODULES",
    "INPUT_PATH",
    "MIB",
    "ChildFailed",
    "Json",
    "ParserKilled",
    "Preload",
    "ProcessLimits",
    "WarmUp",
    "run_limited",
]

# How long a child that closed its pipe may take to exit before it is killed.
_EXIT_GRACE_SECONDS = 5.0
# A native allocation that fails under RLIMIT_AS ends in abort() with nothing said, so the
# child's peak resident memory (wait4's ru_maxrss) is the evidence. A forked child starts
# with the fork server's pages mapped (its resident memory at the fork, about 20 MiB with
# PDFium, is the floor of the child's peak; nothing of the worker's), so what counts is the
# peak above that floor, against the address space the child may add (``memory_bytes``).
# PDFium inflating or recursing (the hostile corpus) dies with 78-99 % of it resident; a
# parse aborted from outside has a page or two (a few MiB).
_MEMORY_LIMIT_REACHED = 0.75


@dataclass(frozen=True)
class ProcessLimits:
    """What one child process may use before it is stopped, and what its fork server
    loads before forking it."""

    cpu_seconds: int = 60
    # Address space the child may map on top of the fork server's own mappings, which it
    # starts with (the interpreter, PDFium and whatever ``preload`` loads: about 30 MiB
    # with the default). RLIMIT_AS, not resident memory: what Linux enforces reliably.
    memory_bytes: int = 1024 * MIB
    wall_seconds: float = 120.0
    # Bounds what the parent reads from the child in one message.
    max_message_bytes: int = 64 * MIB
    # RLIMIT_NOFILE: a parser opens its input and a few libraries' files at most.
    open_files: int = 64
    # RLIMIT_NPROC: 1 is the child alone, no other process or thread (Linux counts
    # threads; it does not enforce this limit on uid 0). Native libraries must not start
    # threads (OMP_THREAD_LIMIT=1 is set for OpenMP ones, Tesseract's).
    processes: int = 1
    # RLIMIT_FSIZE: the child writes no file (Landlock lets it create none either).
    file_bytes: int = 0
    preload: Preload = field(default_factory=Preload)


class ParserKilled(ChildFailed):
    """The child died of a signal before reaching any of its limits: worth a retry, and
    recorded as ``parser_killed`` when every retry ends the same way."""


def run_limited(
    target: Callable[..., Iterable[Json]],
    *args: Json,
    limits: ProcessLimits,
    on_wait: Callable[[], None] | None = None,
    wait_interval: float = 5.0,
    input_file: str | os.PathLike[str] | IO[bytes] | None = None,
) -> Generator[Json, None, None]:
    """Runs ``target(*args)`` in a child process and yields what it yields, as it does.

    ``target`` must be a module-level function (the child imports it by name) taking and
    yielding JSON values. ``input_file`` (a path, or a file open for reading) is the one
    file the child may read besides code: it opens it as ``INPUT_PATH`` (a library that
    resolves that link, as pypdfium2 does, needs a file that has a name); where the kernel
    has Landlock, any other file is out of its reach.
    ``on_wait`` is called every ``wait_interval`` seconds while no item
    arrives, so a caller can heartbeat through a long silence. The wall-clock limit covers
    the whole run. Closing the iterator early kills the child. Many threads may call this
    at once: each call has a child of its own.

    Raises ``UnprocessableContent`` with ``timeout`` (CPU or wall clock) or ``too_large``
    (memory, oversized output), or whatever ``UnprocessableContent`` the target raised;
    ``ParserKilled`` when a signal ended the child short of its limits; ``ChildFailed``
    otherwise (the fork server ending mid-parse included).
    """
    job: dict[str, Json] = {
        "target": _name_of(target),
        "args": list(args),
        "cpu_seconds": limits.cpu_seconds,
        "memory_bytes": limits.memory_bytes,
        "open_files": limits.open_files,
        "processes": limits.processes,
        "file_bytes": limits.file_bytes,
    }
    server = fork_server(limits.preload)
    opened = isinstance(input_file, (str, os.PathLike))
    input_fd = (
        os.open(input_file, os.O_RDONLY | os.O_CLOEXEC)
        if isinstance(input_file, (str, os.PathLike))
        else None
        if input_file is None
        else input_file.fileno()
    )
    try:
        child = server.submit(job, input_fd)
    finally:
        if opened and input_fd is not None:
            os.close(input_fd)
    try:
        yield from _receive(child, limits, on_wait, wait_interval)
    finally:
        _end(server, child)


def _end(server: ForkServer, child: ForkedChild) -> None:
    """Kills the child and waits until its fork server reaped it, whatever interrupts this.

    A cancelled Temporal activity learns it by an exception raised asynchronously into
    its thread, wherever that thread is, this block included: the child is gone before
    the exception goes on. A fork server that does not answer is killed itself, which
    kills its children: no worker thread waits on it for ever.
    """
    interrupted: BaseException | None = None
    for _ in range(3):
        try:
            child.kill()
            try:
                child.wait(timeout=_EXIT_GRACE_SECONDS)
            except TimeoutError:
                server.stop()
            except ServerGone:
                pass  # its children die with it (PR_SET_PDEATHSIG)
            break
        except BaseException as err:  # re-raised below, once the child is gone
            interrupted = err
    child.close()
    if interrupted is not None:
        raise interrupted


def _receive(
    child: ForkedChild,
    limits: ProcessLimits,
    on_wait: Callable[[], None] | None,
    wait_interval: float,
) -> Iterator[Json]:
    reader: Connection = child.reader
    deadline = time.monotonic() + limits.wall_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UnprocessableContent(
                FailureReason.TIMEOUT, f"parsing took longer than {limits.wall_seconds:g} s"
            )
        if not reader.poll(min(remaining, wait_interval)):
            if on_wait is not None:
                on_wait()
            continue
        try:
            raw = reader.recv_bytes(limits.max_message_bytes)
        except EOFError:
            raise _exit_failure(child, limits) from None
        except OSError:
            # recv_bytes refuses a message over the bound (and leaves the pipe unusable).
            raise UnprocessableContent(
                FailureReason.TOO_LARGE,
                f"parsing produced more than {limits.max_message_bytes // MIB} MiB at once",
            ) from None
        message = _parse(raw)
        if "item" in message:
            yield message["item"]
        elif message.get("done") is True:
            return
        elif "failed" in message:
            raise UnprocessableContent(_reason(message["failed"]), str(message.get("message", "")))
        else:
            raise ChildFailed(f"the parser process failed:\n{message.get('error', message)}")


def _exit_failure(child: ForkedChild, limits: ProcessLimits) -> Exception:
    """Why a child that closed its pipe without an answer ended."""
    try:
        ended = child.wait(timeout=_EXIT_GRACE_SECONDS)
    except TimeoutError:
        return ChildFailed("the parser process closed its pipe but did not exit")
    except ServerGone:
        return ChildFailed("the fork server ended while the parser ran")
    if ended.code >= 0:
        return ChildFailed(f"the parser process exited with status {ended.code} and no answer")
    signum = -ended.code
    name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
    # The soft CPU limit sends SIGXCPU; the hard one, two seconds later, SIGKILL.
    if signum == signal.SIGXCPU or ended.cpu_seconds >= limits.cpu_seconds:
        return UnprocessableContent(
            FailureReason.TIMEOUT, f"parsing used more than {limits.cpu_seconds} s of CPU time"
        )
    grown = ended.peak_bytes - ended.base_bytes
    # glibc asks for its heap slack on top of every growth (``HEAP_SLACK_BYTES``), so an
    # allocation can fail with that much of the limit not yet resident: counted as reached.
    if (
        signum == signal.SIGABRT
        and grown + HEAP_SLACK_BYTES >= _MEMORY_LIMIT_REACHED * limits.memory_bytes
    ):
        return UnprocessableContent(
            FailureReason.TOO_LARGE,
            f"the parser stopped ({name}) on reaching the memory limit of "
            f"{limits.memory_bytes // MIB} MiB",
        )
    return ParserKilled(
        f"the parser process was ended by {name} before reaching its limits "
        f"({ended.cpu_seconds:.1f} s of CPU, {max(grown, 0) // MIB} MiB resident "
        f"above the fork server's)"
    )


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise ChildFailed("the parser process sent something that is not a message")
    return message


def _reason(value: object) -> FailureReason:
    try:
        return FailureReason(str(value))
    except ValueError:
        raise ChildFailed(f"the parser process reported an unknown reason {value!r}") from None


def _name_of(target: Callable[..., object]) -> str:
    module, qualname = target.__module__, target.__qualname__
    if module == "__main__" or "<" in qualname:
        raise ValueError(f"{target!r} is not a module-level function a child can import")
    return f"{module}:{qualname}"
