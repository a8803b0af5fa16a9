"""Runs a parser of untrusted content in a child process under hard limits.

A hostile file can make a parser loop, allocate without bound or crash. So the parser
runs in a child process that sets RLIMIT_CPU and RLIMIT_AS on itself, while the parent
enforces a wall-clock deadline and kills the child when it passes. All the parent takes
from the child is size-bounded JSON through a pipe (never a pickle: the child is the
process a crafted file may have taken over), so whatever the child does ends here as a
``UnprocessableContent`` or a ``ChildFailed``, never as a crash of the worker.

Only the limits set here blame the file (``UnprocessableContent``): the CPU limit and the
wall clock (``timeout``), the memory limit (``too_large``). A child that dies of a signal
without having reached one of them was killed by something else (the host's OOM killer,
an operator) or crashed in a way retrying may not repeat: ``ParserKilled``, worth a retry.

The child is a fresh interpreter started by ``subprocess`` (fork+exec), not a
``multiprocessing`` "spawn" child: spawn re-imports the parent's ``__main__`` in every
child, which for the Temporal worker means about 2 s and 80 MB of imports (temporalio,
eventsourcing, ...) per document, where this child imports only its parser. Forking
without exec is not an option in the threaded worker.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, TypeAlias

from application.processing import FailureReason, UnprocessableContent

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

MIB = 1024 * 1024
# Heap kept by the child's allocator instead of being returned to the kernel (glibc).
HEAP_SLACK_BYTES = 32 * MIB
# How long a child that closed its pipe may take to exit before it is killed.
_EXIT_GRACE_SECONDS = 5.0
# A native allocation that fails under RLIMIT_AS ends in abort() with nothing said, so the
# child's peak resident memory (wait4's ru_maxrss) is the evidence: PDFium inflating or
# recursing (the hostile corpus) dies with 78-99 % of the address-space limit resident,
# while a parse aborted from outside has the interpreter and a page or two (a few dozen
# MiB). Linux carries the parent's peak over into the child's across exec, so with a
# parent above this share of the limit every abort counts as the limit: the old verdict.
_MEMORY_LIMIT_REACHED = 0.75
# The child's side of the pipe, run as `python -m` (it imports only this module and its target).
_CHILD_MODULE = "infrastructure.processing.child"


@dataclass(frozen=True)
class ProcessLimits:
    """What one child process may use before it is stopped."""

    cpu_seconds: int = 60
    # Address space, not resident memory: RLIMIT_AS is what Linux enforces reliably. The
    # interpreter with PDFium loaded maps about 30 MB of it before parsing anything.
    memory_bytes: int = 1024 * MIB
    wall_seconds: float = 120.0
    # Bounds what the parent reads from the child in one message.
    max_message_bytes: int = 64 * MIB


class ChildFailed(RuntimeError):  # noqa: N818 - a domain word
    """The child process failed for a reason that says nothing about the content.

    A bug, a missing module, an exit without an answer: worth a retry, unlike
    ``UnprocessableContent``.
    """


class ParserKilled(ChildFailed):
    """The child died of a signal before reaching any of its limits: worth a retry, and
    recorded as ``parser_killed`` when every retry ends the same way."""


def run_limited(
    target: Callable[..., Iterable[Json]],
    *args: Json,
    limits: ProcessLimits,
    on_wait: Callable[[], None] | None = None,
    wait_interval: float = 5.0,
) -> Generator[Json, None, None]:
    """Runs ``target(*args)`` in a child process and yields what it yields, as it does.

    ``target`` must be a module-level function (the child imports it by name) taking and
    yielding JSON values. ``on_wait`` is called every ``wait_interval`` seconds while no
    item arrives, so a caller can heartbeat through a long silence. The wall-clock limit
    covers the whole run. Closing the iterator early kills the child.

    Raises ``UnprocessableContent`` with ``timeout`` (CPU or wall clock) or ``too_large``
    (memory, oversized output), or whatever ``UnprocessableContent`` the target raised;
    ``ParserKilled`` when a signal ended the child short of its limits; ``ChildFailed``
    otherwise.
    """
    job = json.dumps(
        {
            "target": _name_of(target),
            "args": list(args),
            "cpu_seconds": limits.cpu_seconds,
            "memory_bytes": limits.memory_bytes,
        }
    ).encode()
    reader, writer = Pipe(duplex=False)
    # Once the child holds the only write end, its exit shows here as EOF.
    with writer:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", _CHILD_MODULE, str(writer.fileno()), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                pass_fds=(writer.fileno(),),
                env=_child_environment(),
                # Out of the worker's process group: a Ctrl-C meant for the worker must
                # not reach the child before the worker decides what to do about it.
                start_new_session=True,
            )
        except BaseException:
            reader.close()
            raise
    try:
        _send_job(child, job)
        yield from _receive(child, reader, limits, on_wait, wait_interval)
    finally:
        _end(child)
        reader.close()


def _end(child: subprocess.Popen[bytes]) -> None:
    """Kills and reaps the child, whatever interrupts this.

    A cancelled Temporal activity learns it by an exception raised asynchronously into
    its thread, wherever that thread is, this block included: the child is gone before
    the exception goes on.
    """
    interrupted: BaseException | None = None
    for _ in range(3):
        try:
            child.kill()  # a no-op once the child has been reaped
            child.wait()
            break
        except BaseException as err:  # re-raised below, once the child is gone
            interrupted = err
    if interrupted is not None:
        raise interrupted


def _receive(
    child: subprocess.Popen[bytes],
    reader: Connection,
    limits: ProcessLimits,
    on_wait: Callable[[], None] | None,
    wait_interval: float,
) -> Iterator[Json]:
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


def _send_job(child: subprocess.Popen[bytes], job: bytes) -> None:
    assert child.stdin is not None
    try:
        child.stdin.write(job)
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child died before reading; its exit status tells why


def _exit_failure(child: subprocess.Popen[bytes], limits: ProcessLimits) -> Exception:
    """Why a child that closed its pipe without an answer ended."""
    ended = _reap(child, timeout=_EXIT_GRACE_SECONDS)
    if ended is None:
        return ChildFailed("the parser process closed its pipe but did not exit")
    code, usage = ended
    if code >= 0:
        return ChildFailed(f"the parser process exited with status {code} and no answer")
    signum = -code
    name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
    cpu_seconds = usage.ru_utime + usage.ru_stime
    # The soft CPU limit sends SIGXCPU; the hard one, two seconds later, SIGKILL.
    if signum == signal.SIGXCPU or cpu_seconds >= limits.cpu_seconds:
        return UnprocessableContent(
            FailureReason.TIMEOUT, f"parsing used more than {limits.cpu_seconds} s of CPU time"
        )
    # ru_maxrss is in KiB on Linux.
    peak_bytes = usage.ru_maxrss * 1024
    if signum == signal.SIGABRT and peak_bytes >= _MEMORY_LIMIT_REACHED * limits.memory_bytes:
        return UnprocessableContent(
            FailureReason.TOO_LARGE,
            f"the parser stopped ({name}) on reaching the memory limit of "
            f"{limits.memory_bytes // MIB} MiB",
        )
    return ParserKilled(
        f"the parser process was ended by {name} before reaching its limits "
        f"({cpu_seconds:.1f} s of CPU, {peak_bytes // MIB} MiB resident)"
    )


def _reap(
    child: subprocess.Popen[bytes], *, timeout: float
) -> tuple[int, resource.struct_rusage] | None:
    """The child's exit code and resource usage, once it exits within ``timeout``; else
    None, with the child killed. ``Popen.wait`` reaps without the usage."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode, usage
        if time.monotonic() >= deadline:
            child.kill()
            child.wait()
            return None
        time.sleep(0.01)


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


def _child_environment() -> dict[str, str]:
    # Only what the child needs to import its target: none of the worker's settings or
    # credentials reach the process that parses untrusted files.
    return {
        "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        # glibc hands the free top of the heap back to the kernel once it passes 128 KiB.
        # PDFium frees about a megabyte per page of dense text and allocates it again for
        # the next, so a fresh child faulted that memory in anew for every page: a quarter
        # of its CPU time on a 500-page PDF (bench "pdf.throughput"). With this much slack
        # kept, it reuses the pages; the peak resident memory is the same.
        "MALLOC_TOP_PAD_": str(HEAP_SLACK_BYTES),
    }
