"""The parser child's walls: each test shows one of them holding against what a parser
taken over by a crafted file would try first, before it read a byte of its input.

The targets run in the child, which imports them by name: they live at module level.
Where a wall depends on the kernel (Landlock, user and network namespaces), the test
says so in its assertion message rather than skipping: this project's test machines
have them, and a machine without them should fail loudly here.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infrastructure.processing.forkserver import server_environment
from infrastructure.processing.limits import MIB, Json, ProcessLimits, run_limited
from tests.support import REPO_ROOT, no_parser_outlives

LIMITS = ProcessLimits(cpu_seconds=10, memory_bytes=512 * MIB, wall_seconds=20)
_PR_GET_DUMPABLE = 3


def attempt(path: str, mode: str = "r") -> str:
    """What opening ``path`` gives: "ok" or the error's name."""
    try:
        with open(path, mode) as file:
            if "r" in mode:
                file.read(1)
        return "ok"
    except OSError as err:
        return type(err).__name__


def read_environments(worker_pid: int) -> Iterator[Json]:
    yield {
        "parent": attempt(f"/proc/{os.getppid()}/environ"),
        "worker": attempt(f"/proc/{worker_pid}/environ"),
        "own": dict(os.environ),
    }


def signal_others(worker_pid: int) -> Iterator[Json]:
    outcome: dict[str, Json] = {}
    for name, pid in (("worker", worker_pid), ("server", os.getppid()), ("self", os.getpid())):
        try:
            os.kill(pid, 0)  # the permission check of a signal, without the signal
            outcome[name] = "ok"
        except OSError as err:
            outcome[name] = type(err).__name__
    yield outcome


def open_descriptors() -> Iterator[Json]:
    found: list[Json] = []
    for fd in range(1024):
        try:
            os.fstat(fd)
            found.append(fd)
        except OSError:
            pass
    yield found


def connect(port: int) -> Iterator[Json]:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        yield "connected"
    except OSError as err:
        yield type(err).__name__


def read_around(input_path: str, others: list[str]) -> Iterator[Json]:
    yield {
        "input": attempt(input_path),
        "others": {path: attempt(path) for path in others},
        "write": attempt(os.path.join(os.path.dirname(input_path), "new.txt"), "w"),
    }


def sleep_a_moment() -> Iterator[Json]:
    yield "parsing"
    time.sleep(30)


def resource_limits() -> Iterator[Json]:
    libc = ctypes.CDLL(None)
    yield {
        "files": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "processes": list(resource.getrlimit(resource.RLIMIT_NPROC)),
        "file_size": list(resource.getrlimit(resource.RLIMIT_FSIZE)),
        "dumpable": libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0),
        "interfaces": [name for _, name in socket.if_nameindex()],
    }


def open_many(count: int) -> Iterator[Json]:
    files = []
    try:
        for _ in range(count):
            files.append(open(os.devnull))  # noqa: SIM115 - kept open on purpose
        yield "opened all"
    except OSError as err:
        yield f"{type(err).__name__} after {len(files)}"


def start_processes() -> Iterator[Json]:
    outcome: dict[str, Json] = {}
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        outcome["fork"] = "ok"
    except OSError as err:
        outcome["fork"] = type(err).__name__
    try:
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
        outcome["thread"] = "ok"
    except RuntimeError as err:
        outcome["thread"] = type(err).__name__
    yield outcome


@pytest.fixture(autouse=True)
def no_parser_outlives_a_test() -> Iterator[None]:
    with no_parser_outlives():
        yield


def only(target: object, *args: Json, input_file: Path | None = None) -> Json:
    assert callable(target)
    (item,) = run_limited(target, *args, limits=LIMITS, input_file=input_file)
    return item


def test_the_child_cannot_read_the_workers_environment_nor_its_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")

    seen = only(read_environments, os.getpid())

    assert isinstance(seen, dict)
    assert seen["worker"] == "PermissionError", "Landlock keeps /proc out of reach"
    assert seen["parent"] == "PermissionError"
    assert "OPENAI_API_KEY" not in json.dumps(seen["own"])
    assert isinstance(seen["own"], dict)
    assert set(seen["own"]) <= {
        *("PYTHONPATH", "MALLOC_TOP_PAD_", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS"),
        "LC_CTYPE",
        # Set by the spreadsheet parser when the server loads openpyxl (formats/xlsx.py).
        "OPENPYXL_DEFUSEDXML",
    }


def test_the_child_cannot_signal_the_worker_nor_its_server() -> None:
    # Same uid, so without Landlock's scope (ABI 6) a taken-over parser could kill them.
    seen = only(signal_others, os.getpid())

    assert seen == {"worker": "PermissionError", "server": "PermissionError", "self": "ok"}


def test_the_child_reaches_no_network_not_even_the_workers_loopback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        # The worker itself can.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

        outcome = only(connect, port)

    assert outcome != "connected"
    assert outcome in ("OSError", "ConnectionRefusedError", "PermissionError", "TimeoutError")


def test_the_child_is_alone_in_a_network_namespace_with_its_loopback_down() -> None:
    seen = only(resource_limits)

    assert isinstance(seen, dict)
    assert seen["interfaces"] == ["lo"], "a network namespace of its own"


def test_the_child_reads_its_input_and_nothing_of_the_worker_s_files(tmp_path: Path) -> None:
    upload = tmp_path / "upload.pdf"
    upload.write_bytes(b"%PDF-1.7 this one")
    other_upload = tmp_path / "other.pdf"
    other_upload.write_bytes(b"%PDF-1.7 someone else's")
    # Another upload, the system's, the checkout's (beside its packages, as data/ is).
    others: list[Json] = [str(other_upload), "/etc/passwd", str(REPO_ROOT / "pyproject.toml")]

    seen = only(read_around, str(upload), others, input_file=upload)

    assert seen == {
        "input": "ok",
        "others": dict.fromkeys(map(str, others), "PermissionError"),
        "write": "PermissionError",
    }


def test_the_child_holds_no_descriptor_of_the_server_or_of_other_jobs(tmp_path: Path) -> None:
    # Another document at work meanwhile: its job socket and pipe are in the server too.
    upload = tmp_path / "upload.pdf"
    upload.write_bytes(b"%PDF-1.7")
    other = run_limited(sleep_a_moment, limits=LIMITS)
    assert next(other) == "parsing"

    seen = only(open_descriptors, input_file=upload)
    other.close()

    # stdin and stdout (/dev/null), stderr, the data pipe, the input.
    assert seen == [0, 1, 2, 3, 4]


def test_the_child_runs_with_limits_on_files_processes_and_file_size() -> None:
    seen = only(resource_limits)

    assert isinstance(seen, dict)
    assert seen["files"] == [64, 64]
    assert seen["processes"] == [1, 1]
    assert seen["file_size"] == [0, 0]
    assert seen["dumpable"] == 0


def test_a_child_opening_files_without_end_is_stopped_by_its_file_limit() -> None:
    assert str(only(open_many, 200)).startswith("OSError after ")


@pytest.mark.skipif(sys.platform != "linux", reason="namespaces, Landlock and prctl are Linux's")
def test_a_worker_that_is_not_root_gets_the_same_walls_and_no_second_process() -> None:
    # The container runs the worker as an ordinary user: its children confine
    # themselves without privilege, and there Linux enforces RLIMIT_NPROC (never for root).
    python = _interpreter_for("nobody")
    seen = _stand_in_worker(
        python,
        "from tests.integration.test_parser_sandbox import resource_limits, start_processes\n"
        "report(list(run_limited(start_processes, limits=LIMITS))"
        " + list(run_limited(resource_limits, limits=LIMITS)))\n",
        user="nobody",
    )

    processes, limits = seen["items"]
    assert processes == {"fork": "BlockingIOError", "thread": "RuntimeError"}
    assert limits["interfaces"] == ["lo"]
    assert seen["sandbox"]["user_namespace"] is True
    assert seen["sandbox"]["landlock_abi"] >= 1


def test_without_landlock_the_user_namespace_still_keeps_the_workers_environment_unread(
    tmp_path: Path,
) -> None:
    # A kernel without Landlock: Linux still refuses a process in another user namespace
    # the /proc files of the worker's (ptrace access), root's included. What remains
    # without Landlock: other files of the worker's user are readable.
    sibling = tmp_path / "sibling.txt"
    sibling.write_text("another upload")
    seen = _stand_in_worker(
        sys.executable,
        _refusing("user_namespace=True, network_namespace=True, landlock_abi=0")
        + "from tests.integration.test_parser_sandbox import read_environments, attempt_one\n"
        "report(list(run_limited(read_environments, os.getpid(), limits=LIMITS))"
        f" + list(run_limited(attempt_one, {str(sibling)!r}, limits=LIMITS)))\n",
    )

    environments, sibling_read = seen["items"]
    assert seen["sandbox"] == {"user_namespace": True, "network_namespace": True, "landlock_abi": 0}
    assert environments["worker"] == "PermissionError"
    assert sibling_read == "ok"


def test_without_landlock_or_namespaces_the_worker_makes_itself_undumpable() -> None:
    # A kernel (or a container's seccomp profile) that refuses all three: an ordinary
    # user's child could read the worker's environment, unless the worker is not dumpable.
    seen = _stand_in_worker(
        _interpreter_for("nobody"),
        _refusing("user_namespace=False, network_namespace=False, landlock_abi=0")
        + "from tests.integration.test_parser_sandbox import read_environments, resource_limits\n"
        "report(list(run_limited(read_environments, os.getpid(), limits=LIMITS))"
        " + list(run_limited(resource_limits, limits=LIMITS)))\n",
        user="nobody",
    )

    environments, limits = seen["items"]
    assert seen["sandbox"] == {
        "user_namespace": False,
        "network_namespace": False,
        "landlock_abi": 0,
    }
    assert environments["worker"] == "PermissionError"
    # What remains: the network, and the other files the worker's user may read.
    assert len(limits["interfaces"]) >= 1


def _refusing(walls: str) -> str:
    """Stand-in worker code whose fork server applies at most ``walls``."""
    return (
        "import infrastructure.processing.forkserver as fs\n"
        "from infrastructure.processing.sandbox import Sandbox\n"
        f"fs._servers[LIMITS.preload] = fs.ForkServer(LIMITS.preload, at_most=Sandbox({walls}))\n"
    )


def attempt_one(path: str) -> Iterator[Json]:
    yield attempt(path)


STAND_IN = """
import json, os, sys
sys.dont_write_bytecode = True
os.environ["OPENAI_API_KEY"] = "sk-secret"
from infrastructure.processing.forkserver import fork_server
from infrastructure.processing.limits import MIB, ProcessLimits, run_limited
LIMITS = ProcessLimits(cpu_seconds=10, memory_bytes=512 * MIB, wall_seconds=20)

def report(items):
    sandbox = fork_server(LIMITS.preload).sandbox
    print("RESULT", json.dumps({"items": items, "sandbox": sandbox.to_json()}), flush=True)

"""


def _stand_in_worker(python: str, script: str, *, user: str | None = None) -> dict[str, Any]:
    """Runs ``script`` as a worker of its own (as ``user``); what it reported."""
    done = subprocess.run(
        [python, "-c", STAND_IN + script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        user=user,
        env={"PYTHONPATH": server_environment()["PYTHONPATH"], "PATH": "/usr/bin:/bin"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the stand-in worker reported nothing:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[0].removeprefix("RESULT "))
    return result


def _interpreter_for(user: str) -> str:
    """An interpreter of this Python version ``user`` may run: this one, or the system's
    (a pyenv interpreter under /root is out of an ordinary user's reach)."""
    uid = pwd.getpwnam(user).pw_uid
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}"):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                user=uid,
                check=False,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            return candidate
    pytest.fail(f"no {version} interpreter that {user} may run (install Debian's {version})")
