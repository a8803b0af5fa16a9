"""The parser child's side: apply the limits to itself, run the target, report as JSON.

Started by ``limits.run_limited`` as ``python -m infrastructure.processing.child FD PPID``,
with the job (target name, arguments, limits) on stdin. Everything it sends back is
size-bounded JSON on the pipe ``FD``; the parent trusts nothing else from it.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.limits import MIB, Json

# linux/prctl.h
_PR_SET_PDEATHSIG = 1


def main(fd: int, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    job = json.loads(sys.stdin.buffer.read())
    _lower_limit(resource.RLIMIT_CORE, 0)
    # The soft limit sends SIGXCPU (which terminates); the hard one is a backstop.
    _lower_limit(resource.RLIMIT_CPU, job["cpu_seconds"], job["cpu_seconds"] + 2)
    _lower_limit(resource.RLIMIT_AS, job["memory_bytes"])
    with Connection(fd, readable=False) as conn:
        conn.send_bytes(_encode(_serve(conn, job)))


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this child when the worker dies (Linux), so a worker killed mid-parse leaves
    no parser spinning until its CPU limit on a page that may never end.

    The signal follows the *thread* that started the child: the worker's activity threads
    live as long as the worker, so it fires only when the worker goes.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # best effort: the CPU and wall-clock limits still bound the child
    # The worker may have died before the prctl took effect.
    if os.getppid() != parent_pid:
        os._exit(1)


def _serve(conn: Connection, job: dict[str, Any]) -> dict[str, Json]:
    try:
        module_name, _, qualname = job["target"].partition(":")
        target: Any = importlib.import_module(module_name)
        for attribute in qualname.split("."):
            target = getattr(target, attribute)
        for item in target(*job["args"]):
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


def _encode(message: dict[str, Json]) -> bytes:
    # A lone surrogate from a parser becomes "?" rather than an unsendable message.
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "replace")


def _lower_limit(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
