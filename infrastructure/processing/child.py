"""Everything that runs outside the worker: the fork server's loop, and each child it forks.

Started by ``forkserver.ForkServer`` as ``python -m infrastructure.processing.child FD
WORKER_PID``, with the control socket as ``FD`` (the protocol is described there). The
server trusts its worker and nothing else; it never reads a document. Each child applies
its limits and its sandbox to itself (``sandbox.py``) right after the fork, before it
reads a byte of its input, runs its target, and reports on its data pipe as size-bounded
JSON; the worker trusts nothing else from it.

The server stays single-threaded (a fork copies only the forking thread, and a child may
make a user namespace only while it has one thread), freezes what it imported out of the
garbage collector's reach so that children share those pages instead of copying them,
and imports each target's module itself on first use, so the next child finds it loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import json
import os
import resource
import selectors
import signal
import socket
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.forkserver import INPUT_PATH, MAX_JOB_BYTES, MIB, Json
from infrastructure.processing.sandbox import (
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    Sandbox,
    SandboxError,
    confine_files,
    enter_namespaces,
    lower_limit,
    prctl,
    probe,
    readable_roots,
)

# The child's descriptors: its data pipe and its input file (INPUT_PATH); 0-2 as the
# server's.
_DATA_FD = 3
_INPUT_FD = int(INPUT_PATH.rpartition("/")[2])
# Statuses of a child that could not start its target (the server reports them).
_EXIT_SANDBOX_FAILED = 71
_EXIT_SETUP_FAILED = 70
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def main(control_fd: int, worker_pid: int) -> None:
    _die_with(worker_pid)
    control = socket.socket(fileno=control_fd)
    config = json.loads(control.recv(MAX_JOB_BYTES))
    try:
        preload = config["preload"]
        for module in preload["modules"]:
            importlib.import_module(module)
        for function, args in preload["warm_ups"]:
            _resolve(function)(*args)
        sandbox = probe().within(Sandbox.from_json(config["at_most"]))
        _check_single_threaded("the preload")
    except BaseException:
        control.send(json.dumps({"error": traceback.format_exc()}).encode())
        return
    # What is loaded now stays loaded: children share these pages until they write them,
    # and a collection in a child would write to every object it walks.
    gc.collect()
    gc.freeze()
    control.send(json.dumps({"ready": sandbox.to_json()}).encode())
    _Server(control, sandbox).run()


def _check_single_threaded(what: str) -> None:
    threads = len(os.listdir("/proc/self/task")) if sys.platform == "linux" else 1
    if threads != 1:
        raise RuntimeError(f"{what} started threads ({threads}): children would hang")


def _die_with(parent_pid: int) -> None:
    """SIGKILL this process when ``parent_pid`` (its parent) dies, so that a process
    killed mid-parse leaves nothing parsing for nobody. Best effort where prctl is
    missing: the CPU and wall-clock limits still bound a child."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    # The parent may have died before the prctl took effect.
    if os.getppid() != parent_pid:
        os._exit(1)


@dataclass
class _Running:
    channel: socket.socket
    base_bytes: int


@dataclass(frozen=True)
class _Setup:
    """What the server knows a child needs, measured just before the fork."""

    sandbox: Sandbox
    readable: list[str]
    # The server's own, which the child starts with.
    mapped_bytes: int
    resident_bytes: int
    server_pid: int


class _Server:
    """Forks a child per job, kills on request, reaps and reports: one thread, one loop."""

    def __init__(self, control: socket.socket, sandbox: Sandbox) -> None:
        self._control = control
        self._sandbox = sandbox
        self._running: dict[int, _Running] = {}
        self._modules_seen = 0
        self._loaded: set[str] = set()
        self._roots: list[str] = []
        self._selector = selectors.DefaultSelector()
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake = wake_read
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self._selector.register(control, selectors.EVENT_READ, self._on_job)
        self._selector.register(wake_read, selectors.EVENT_READ, self._on_exits)

    def run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                # An earlier handler of the same round may have closed this one's socket
                # (a child reaped while its worker asked to kill it).
                if self._selector.get_map().get(key.fd) is key:
                    key.data(key.fileobj)

    def _on_job(self, control: socket.socket) -> None:
        message, fds, _, _ = socket.recv_fds(control, MAX_JOB_BYTES, 3)
        if not message:
            # The worker is gone: so are its documents.
            for pid in self._running:
                os.kill(pid, signal.SIGKILL)
            os._exit(0)
        data_fd, channel_fd, *rest = fds
        input_fd = rest[0] if rest else None
        channel = socket.socket(fileno=channel_fd)
        try:
            job = json.loads(message)["job"]
            self._load_for(job["target"])
            mapped, resident = _statm()
            setup = _Setup(self._sandbox, self._readable(), mapped, resident, os.getpid())
            pid = os.fork()
            if pid == 0:
                _child(job, data_fd, input_fd, setup)
        except BaseException:
            _send(channel, {"error": traceback.format_exc()})
            channel.close()
            return
        finally:
            os.close(data_fd)
            if input_fd is not None:
                os.close(input_fd)
        self._running[pid] = _Running(channel, setup.resident_bytes)
        self._selector.register(
            channel, selectors.EVENT_READ, lambda channel: self._on_request(channel, pid)
        )

    def _load_for(self, target: str) -> None:
        """Imports the target's module here, once, and what it declares its parser imports
        late (``FORK_SERVER_PRELOAD``: modules, and "module:function" warm-ups): the next
        child of this target finds them loaded, and a worker that never meets a format
        never holds its libraries."""
        module_name = target.partition(":")[0]
        if module_name in self._loaded:
            return
        module = importlib.import_module(module_name)
        for name in getattr(module, "FORK_SERVER_PRELOAD", ()):
            if ":" in name:
                _resolve(name)()
            else:
                importlib.import_module(name)
        self._loaded.add(module_name)
        _check_single_threaded(f"loading {module_name}")
        gc.freeze()

    def _readable(self) -> list[str]:
        # Targets import new modules now and then; the roots change only with them.
        if len(sys.modules) != self._modules_seen:
            self._modules_seen = len(sys.modules)
            self._roots = readable_roots(_module_paths())
        return self._roots

    def _on_request(self, channel: socket.socket, pid: int) -> None:
        """``kill``, or the worker closing the socket: either way the child goes."""
        try:
            request = channel.recv(16)
        except OSError:
            request = b""
        if pid in self._running:
            # Only this loop reaps, so the pid is still this child's.
            os.kill(pid, signal.SIGKILL)
        if not request:
            self._selector.unregister(channel)

    def _on_exits(self, wake: int) -> None:
        try:
            while os.read(wake, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            running = self._running.pop(pid, None)
            if running is None:
                continue
            _send(
                running.channel,
                {
                    "exit": os.waitstatus_to_exitcode(status),
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "peak": usage.ru_maxrss * 1024,  # KiB on Linux
                    "base": running.base_bytes,
                },
            )
            if running.channel.fileno() in self._selector.get_map():
                self._selector.unregister(running.channel)
            running.channel.close()


def _child(job: dict[str, Any], data_fd: int, input_fd: int | None, setup: _Setup) -> None:
    """The forked child: confined and limited before its target reads anything; it never
    returns into the server's loop."""
    status = _EXIT_SETUP_FAILED
    try:
        _die_with(setup.server_pid)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        _keep_only(data_fd, input_fd)
        status = _EXIT_SANDBOX_FAILED
        enter_namespaces(setup.sandbox)
        confine_files(
            setup.sandbox.landlock_abi, setup.readable, None if input_fd is None else _INPUT_FD
        )
        # The soft CPU limit sends SIGXCPU (which terminates); the hard one is a backstop.
        lower_limit(resource.RLIMIT_CPU, job["cpu_seconds"], job["cpu_seconds"] + 2)
        lower_limit(resource.RLIMIT_AS, setup.mapped_bytes + job["memory_bytes"])
        lower_limit(resource.RLIMIT_CORE, 0)
        lower_limit(resource.RLIMIT_NOFILE, job["open_files"])
        lower_limit(resource.RLIMIT_NPROC, job["processes"])
        lower_limit(resource.RLIMIT_FSIZE, job["file_bytes"])
        prctl(PR_SET_DUMPABLE, 0)
        status = 0
        with Connection(_DATA_FD, readable=False) as conn:
            conn.send_bytes(_encode(_serve(conn, job)))
    except SandboxError as err:
        _tell(f"the parser's sandbox could not be applied: {err}")
    except BaseException:
        _tell(traceback.format_exc())
    finally:
        os._exit(status)


def _keep_only(data_fd: int, input_fd: int | None) -> None:
    """Leaves the child its data pipe as 3 and its input as 4, and closes every other
    descriptor it inherited from the server: the other jobs' sockets above all."""
    kept = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (data_fd, input_fd) if fd is not None]
    for target, fd in zip((_DATA_FD, _INPUT_FD), kept, strict=False):
        os.dup2(fd, target)
    # The open ones, not every number up to RLIMIT_NOFILE (closing 20,000 took 0.6 ms).
    for fd in map(int, os.listdir("/proc/self/fd") if sys.platform == "linux" else []):
        if fd >= _DATA_FD + len(kept):
            with contextlib.suppress(OSError):  # the listing's own descriptor
                os.close(fd)
    if sys.platform != "linux":
        os.closerange(_DATA_FD + len(kept), resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _tell(error: str) -> None:
    # The pipe may be what failed; the exit status still tells the worker.
    with contextlib.suppress(BaseException), Connection(_DATA_FD, readable=False) as conn:
        conn.send_bytes(_encode({"error": error}))


def _serve(conn: Connection, job: dict[str, Any]) -> dict[str, Json]:
    try:
        for item in _resolve(job["target"])(*job["args"]):
            conn.send_bytes(_encode({"item": item}))
    except UnprocessableContent as err:
        return {"failed": err.reason.value, "message": err.message}
    except MemoryError:
        return {
            "failed": FailureReason.TOO_LARGE.value,
            "message": f"parsing needed more than the memory limit of "
            f"{job['memory_bytes'] // MIB} MiB",
        }
    except Exception:
        return {"error": traceback.format_exc()}
    return {"done": True}


def _resolve(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in qualname.split("."):
        target = getattr(target, attribute)
    return target


def _module_paths() -> list[str]:
    """The files and package directories of every top-level module loaded."""
    paths: list[str] = []
    for name, module in list(sys.modules.items()):
        if "." in name:
            continue
        file = getattr(module, "__file__", None)
        paths.extend([file] if file else list(getattr(module, "__path__", [])))
    return paths


def _encode(message: dict[str, Json]) -> bytes:
    # A lone surrogate from a parser becomes "?" rather than an unsendable message.
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "replace")


def _send(channel: socket.socket, message: dict[str, Json]) -> None:
    # The worker may have stopped waiting for this child.
    with contextlib.suppress(OSError):
        channel.send(json.dumps(message).encode())


def _statm() -> tuple[int, int]:
    """This process's mapped bytes, and its resident bytes a child of it starts with.

    A fork copies the page table entries of anonymous memory (which count at once in
    the child's resident set, shared until written) but not those of files, which the
    child faults in when it uses them: its resident memory starts at this process's
    anonymous resident memory (statm: resident less shared).
    """
    if sys.platform != "linux":
        return 0, 0
    with open("/proc/self/statm", "rb") as statm:
        mapped, resident, shared = statm.read().split()[:3]
    return int(mapped) * _PAGE_SIZE, (int(resident) - int(shared)) * _PAGE_SIZE


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
