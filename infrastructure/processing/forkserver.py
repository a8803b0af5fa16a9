"""The worker's side of the fork server: one warm process that forks every parser child.

A fresh interpreter per document cost 120-330 ms, mostly imports, which held PDF
throughput under PDFium's own speed. So each worker process keeps one fork server per
``Preload``: started on first use as a fresh interpreter (``python -m
infrastructure.processing.child``) with a minimal environment, it imports the parsers
once, calls the warm-ups, probes what the kernel allows to confine a child
(``sandbox.probe``), and then forks one child per document (``child.py``), serving any
number of them at once.

Why a fresh interpreter and not a fork of the worker: the worker is threaded (Temporal's
activity threads, gRPC's), and a fork copies the locks other threads hold; and the
worker's memory and environment hold its settings and secrets, which a fork would hand to
every child. The fork server has neither: no thread, no setting, an environment of four
variables.

The protocol runs over Unix sockets (SOCK_SEQPACKET: a message per send, file
descriptors passed with it). At start the worker sends the preload on the control socket
and the server answers ``{"ready": sandbox}`` or ``{"error": traceback}``. Per document
the worker sends ``{"job": ...}`` with the write end of a fresh data pipe (the child's only
way back, read by ``limits.run_limited`` as before), the server's end of a fresh job
socket, and the input file if any. The server forks; when it has reaped the child it
reports on the job socket ``{"exit", "cpu", "peak", "base"}``: exit code, CPU seconds,
peak and starting resident bytes (wait4 runs in the server, the child's parent). The
worker writes ``kill`` on the job socket (or closes it) to have the child killed; only
the server kills and reaps, so a reused pid is never hit.

Lifecycle: the server dies with its worker (PR_SET_PDEATHSIG, from a keeper thread that
lives as long as the worker, and EOF on the control socket); children die with their
server (PR_SET_PDEATHSIG). The next document after a server died starts a new one; the
documents it was running fail with ``ChildFailed``, which the activity retries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, TypeAlias

from infrastructure.processing.sandbox import PR_SET_DUMPABLE, Sandbox, prctl

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

MIB = 1024 * 1024
# Heap kept by the child's allocator instead of being returned to the kernel (glibc).
HEAP_SLACK_BYTES = 32 * MIB
# What a fork server imports before forking anyone: the PDF parser and PDFium. Other
# parsers add theirs (settings: ``PARSER_PRELOAD``).
DEFAULT_MODULES = ("pypdfium2", "infrastructure.processing.pdf")
# The process the worker starts: the fork server's loop and each child's side.
SERVER_MODULE = "infrastructure.processing.child"
# Where a child finds its input file (``run_limited(input_file=...)``): descriptor 4,
# opened anew by path, so that a parser that wants a path (PDFium) has one, while the
# file itself may have none (an unnamed temporary copy).
INPUT_PATH = "/proc/self/fd/4"
# Job descriptions are small (a target's name, a path, a few numbers); content travels
# as the input file, never as arguments.
MAX_JOB_BYTES = 64 * 1024
# The data pipe's capacity; 1 MiB is what Linux lets any user set (pipe-max-size).
PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = 1031  # linux/fcntl.h
# A warm-up may load an OCR engine's models: seconds, not minutes.
_START_TIMEOUT_SECONDS = 120.0


class ChildFailed(RuntimeError):  # noqa: N818 - a domain word
    """The child process failed for a reason that says nothing about the content.

    A bug, a missing module, an exit without an answer, a fork server that ended: worth
    a retry, unlike ``UnprocessableContent``.
    """


class ServerGone(ChildFailed):
    """The fork server ended before it reported the child's exit (the child died with it)."""


@dataclass(frozen=True)
class WarmUp:
    """A function the fork server calls once at start, named "module:function", with
    JSON arguments: what loads an engine's models into memory every child then shares
    (copy-on-write) instead of loading them per document."""

    function: str
    args: tuple[str | int | float | bool | None, ...] = ()


@dataclass(frozen=True)
class Preload:
    """What a fork server imports and initialises at start, before it forks any child.

    Besides these, the server imports each target's module when it first meets it, and
    what that module declares in ``FORK_SERVER_PRELOAD`` (module names, and
    "module:function" warm-ups without arguments): libraries its parser imports late, which
    a worker then holds only once it parses that format. Modules must not start threads
    when imported, nor warm-ups: a fork copies only the forking thread, and the server
    refuses to go on with more than one.
    """

    modules: tuple[str, ...] = DEFAULT_MODULES
    warm_ups: tuple[WarmUp, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Json]:
        return {
            "modules": list(self.modules),
            "warm_ups": [[w.function, list(w.args)] for w in self.warm_ups],
        }


@dataclass(frozen=True)
class ChildEnd:
    """How a child ended, from the fork server's wait4."""

    code: int  # as Popen.returncode: negative for a signal
    cpu_seconds: float
    peak_bytes: int
    # The fork server's resident memory when it forked the child: the floor of the peak.
    base_bytes: int


class ForkedChild:
    """One child as the worker sees it: the data pipe it answers on, and its job socket."""

    def __init__(self, reader: Connection, channel: socket.socket) -> None:
        self.reader = reader
        self._channel = channel
        self._end: ChildEnd | None = None

    def kill(self) -> None:
        """Has the fork server SIGKILL the child (a no-op once it has ended)."""
        if self._end is None:
            # Failing, the server is gone, and the child with it.
            with contextlib.suppress(OSError):
                self._channel.send(b"kill")

    def wait(self, *, timeout: float) -> ChildEnd:
        """How the child ended, once the fork server reaped it. Raises ``TimeoutError``
        when it did not within ``timeout``, ``ServerGone`` when the server ended first."""
        if self._end is None:
            self._channel.settimeout(timeout)
            try:
                raw = self._channel.recv(4096)
            except TimeoutError:
                raise
            except OSError:
                raw = b""
            if not raw:
                raise ServerGone("the fork server ended")
            self._end = _child_end(raw)
        return self._end

    def close(self) -> None:
        self._channel.close()
        self.reader.close()


class ForkServer:
    """The worker's handle on one fork server process: starts it on first use and again
    when it died, and hands it documents from any number of threads at once."""

    def __init__(self, preload: Preload, *, at_most: Sandbox | None = None) -> None:
        self.preload = preload
        # Only tests of what a kernel that refuses some walls gets pass less than all.
        self._at_most = at_most or Sandbox(True, True, 1 << 30)
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.sandbox: Sandbox | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def submit(self, job: dict[str, Json], input_fd: int | None) -> ForkedChild:
        """Has the server fork a child for ``job``; ``input_fd`` is lent, not taken."""
        payload = json.dumps({"job": job}).encode()
        if len(payload) > MAX_JOB_BYTES:
            raise ValueError(
                f"a job's arguments take {len(payload)} bytes, more than {MAX_JOB_BYTES}: "
                "pass content as the input file"
            )
        reader, writer = Pipe(duplex=False)
        _widen(writer.fileno())
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = [writer.fileno(), theirs.fileno()] + ([] if input_fd is None else [input_fd])
        try:
            with self._lock:
                # A server that died since the last job costs this one nothing: it was
                # not sent yet, so it goes to the next server.
                for attempt in (1, 2):
                    control = self._started()
                    try:
                        socket.send_fds(control, [payload], fds)
                        break
                    except OSError:
                        self._stop_locked()
                        if attempt == 2:
                            raise ChildFailed("the fork server does not take jobs") from None
        except BaseException:
            reader.close()
            ours.close()
            raise
        finally:
            writer.close()
            theirs.close()
        return ForkedChild(reader, ours)

    def stop(self) -> None:
        """Kills the server (and so its children); the next job starts a new one."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        process, control = self._process, self._control
        self._process = self._control = None
        if process is not None:
            _discard(process)
        if control is not None:
            control.close()

    def _started(self) -> socket.socket:
        if self._control is not None and self._process and self._process.returncode is None:
            return self._control
        self._stop_locked()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = _Keeper(theirs).start()
        finally:
            theirs.close()
        try:
            ours.settimeout(_START_TIMEOUT_SECONDS)
            ours.send(
                json.dumps(
                    {"preload": self.preload.to_json(), "at_most": self._at_most.to_json()}
                ).encode()
            )
            answer = json.loads(ours.recv(MAX_JOB_BYTES) or b"{}")
            ours.settimeout(None)
        except (OSError, ValueError) as err:
            _discard(self._process)
            ours.close()
            raise ChildFailed(f"the fork server did not start: {err}") from None
        if not isinstance(answer, dict) or "ready" not in answer:
            _discard(self._process)
            ours.close()
            detail = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise ChildFailed(f"the fork server did not start:\n{detail}")
        self._control = ours
        self.sandbox = Sandbox.from_json(answer["ready"])
        _report(self.sandbox, self._process.pid)
        return ours


def _widen(pipe: int) -> None:
    """Lets the child write a whole page batch (about 100 KiB of dense text) while the
    worker stores the previous one, instead of blocking on the default 64 KiB."""
    with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size, or not Linux
        fcntl.fcntl(pipe, _F_SETPIPE_SZ, PIPE_BYTES)


def _discard(process: subprocess.Popen[bytes]) -> None:
    """Kills a server (its children die with it) and waits until it is reaped."""
    process.kill()
    # Else left to its keeper thread.
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_START_TIMEOUT_SECONDS)


class _Keeper:
    """Starts the server from a thread of its own that waits on it for as long as it
    runs: PR_SET_PDEATHSIG fires when the *thread* that started a process ends, and the
    activity thread that happens to need the server first may not live as long."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._started = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._error: BaseException | None = None

    def start(self) -> subprocess.Popen[bytes]:
        threading.Thread(target=self._run, name="fork-server", daemon=True).start()
        self._started.wait()
        if self._process is None:
            raise ChildFailed(f"the fork server could not be started: {self._error}")
        return self._process

    def _run(self) -> None:
        try:
            fd = self._control.fileno()
            self._process = subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE, str(fd), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(fd,),
                env=server_environment(),
                # Out of the worker's process group: a Ctrl-C meant for the worker must
                # not reach the parsers before the worker decides what to do about it.
                start_new_session=True,
            )
        except BaseException as err:
            self._error = err
        finally:
            self._started.set()
        if self._process is not None:
            self._process.wait()


def server_environment() -> dict[str, str]:
    """The fork server's whole environment, which its children inherit: only what they
    need to import their targets. None of the worker's settings or credentials reach the
    process that parses untrusted files, nor ``/proc/<its parent>/environ``."""
    return {
        # The worker's own path, in its order: the standard library stays ahead of what
        # packages append (odfpy its own directory, with a math.py).
        "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        # glibc hands the free top of the heap back to the kernel once it passes 128 KiB.
        # PDFium frees about a megabyte per page of dense text and allocates it again for
        # the next, so a child faulted that memory in anew for every page: a quarter of
        # its CPU time on a 500-page PDF (bench "pdf.throughput"). With this much slack
        # kept, it reuses the pages; the peak resident memory is the same.
        "MALLOC_TOP_PAD_": str(HEAP_SLACK_BYTES),
        # A child may not start threads (RLIMIT_NPROC 1), and the server must not have
        # any (a fork copies only the forking thread): OpenMP (Tesseract's) then runs its
        # loops in the calling thread, and numpy's OpenBLAS (openpyxl imports numpy) starts
        # no pool when imported.
        "OMP_THREAD_LIMIT": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


_servers: dict[Preload, ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server(preload: Preload) -> ForkServer:
    """This process's fork server for ``preload`` (created on first use, started on
    first job)."""
    with _servers_lock:
        server = _servers.get(preload)
        if server is None:
            server = _servers[preload] = ForkServer(preload)
        return server


_reported = False


def _report(sandbox: Sandbox, pid: int) -> None:
    """Says once per worker what confines the parser children, and what the kernel
    refused (the children go on without it)."""
    global _reported
    if not sandbox.guards_proc:
        # Without Landlock or a user namespace, only a worker that is not dumpable keeps
        # a child of the same user from reading /proc/<worker>/environ (its settings and
        # secrets). The cost: py-spy (or gdb) attaches to the worker only as root or with
        # CAP_SYS_PTRACE.
        prctl(PR_SET_DUMPABLE, 0)
    if _reported:
        return
    _reported = True
    # Imported here: the fork server imports this module, and every child maps what it loads.
    import structlog

    log = structlog.get_logger(__name__)
    if missing := sandbox.missing():
        log.warning(
            "parser_sandbox_degraded",
            fork_server_pid=pid,
            missing=missing,
            worker_dumpable=sandbox.guards_proc,
            **sandbox.to_json(),
        )
    else:
        log.info("parser_sandbox", fork_server_pid=pid, **sandbox.to_json())


def _child_end(raw: bytes) -> ChildEnd:
    try:
        message: Any = json.loads(raw)
        return ChildEnd(
            code=int(message["exit"]),
            cpu_seconds=float(message["cpu"]),
            peak_bytes=int(message["peak"]),
            base_bytes=int(message["base"]),
        )
    except (ValueError, KeyError, TypeError):
        # The server's own report of a job it could not start (a target that does not
        # import): the child never existed.
        detail = raw.decode("utf-8", "replace")
        raise ChildFailed(f"the fork server could not start the parser:\n{detail}") from None
