"""A parser in a limited child process: every way it can go wrong ends as an error here.

The targets below are what the child runs; they live at module level because the child
imports them by name. Every test also checks that no child process outlives it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import cast

import psutil
import pytest

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.forkserver import fork_server
from infrastructure.processing.limits import (
    MIB,
    ChildFailed,
    Json,
    ParserKilled,
    ProcessLimits,
    run_limited,
)
from tests.support import no_parser_outlives

LIMITS = ProcessLimits(cpu_seconds=10, memory_bytes=512 * MIB, wall_seconds=20)


def echo(*items: Json) -> Iterator[Json]:
    yield from items


def spin() -> Iterator[Json]:
    while True:
        pass


def sleep_after_one_item() -> Iterator[Json]:
    yield "started"
    while True:
        time.sleep(1)


def report_pid_then_spin() -> Iterator[Json]:
    yield os.getpid()
    while True:
        pass


def allocate(megabytes: int) -> Iterator[Json]:
    yield len(bytearray(megabytes * MIB))


def die_by(signum: int) -> Iterator[Json]:
    os.kill(os.getpid(), signum)
    yield "unreachable"


def fill_then_abort(megabytes: int) -> Iterator[Json]:
    ballast = bytearray(megabytes * MIB)
    ballast[::4096] = b"x" * len(ballast[::4096])  # resident, as an inflating parser's
    os.abort()
    yield "unreachable"


def spin_ignoring_sigxcpu() -> Iterator[Json]:
    # Left to the hard limit's SIGKILL, two CPU seconds after the soft one.
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    while True:
        pass
    yield "unreachable"


def exit_silently(status: int) -> Iterator[Json]:
    os._exit(status)
    yield "unreachable"


def refuse(reason: str) -> Iterator[Json]:
    raise UnprocessableContent(FailureReason(reason), "refused by the target")
    yield "unreachable"


def have_a_bug() -> Iterator[Json]:
    raise ValueError("a bug in the parser")
    yield "unreachable"


def flood(megabytes: int) -> Iterator[Json]:
    yield "x" * (megabytes * MIB)


def limits_and_environment() -> Iterator[Json]:
    yield {
        "cpu": list(resource.getrlimit(resource.RLIMIT_CPU)),
        "memory": list(resource.getrlimit(resource.RLIMIT_AS)),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "environment": dict(os.environ),
        "session": os.getsid(0) == os.getpid(),
    }


@pytest.fixture(autouse=True)
def no_child_outlives_a_test() -> Iterator[None]:
    with no_parser_outlives():
        yield


def failure(
    *args: Json, limits: ProcessLimits = LIMITS, target: object = None
) -> UnprocessableContent:
    assert callable(target)
    with pytest.raises(UnprocessableContent) as failed:
        list(run_limited(target, *args, limits=limits))
    return failed.value


def test_items_arrive_in_order_as_json() -> None:
    items = list(run_limited(echo, 1, "Köln", [True, None], {"a": 1.5}, limits=LIMITS))

    assert items == [1, "Köln", [True, None], {"a": 1.5}]


def test_the_child_runs_under_the_limits_without_the_workers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    limits = ProcessLimits(cpu_seconds=7, memory_bytes=300 * MIB)

    (seen,) = run_limited(limits_and_environment, limits=limits)

    assert isinstance(seen, dict)
    assert seen["cpu"] == [7, 9]
    # On top of what the child starts with: the fork server's own mappings.
    server = psutil.Process(fork_server(limits.preload).pid)
    soft, hard = cast(list[int], seen["memory"])
    assert soft == hard
    assert 300 * MIB < soft <= 300 * MIB + server.memory_info().vms
    assert seen["core"] == [0, 0]
    assert isinstance(seen["environment"], dict)
    assert "OPENAI_API_KEY" not in seen["environment"]
    assert seen["session"] is True


def test_a_loop_past_the_cpu_limit_is_a_timeout() -> None:
    limits = ProcessLimits(cpu_seconds=1, wall_seconds=30)

    failed = failure(target=spin, limits=limits)

    assert failed.reason is FailureReason.TIMEOUT
    assert "CPU" in failed.message


def test_a_child_silent_past_the_wall_clock_is_killed_as_a_timeout() -> None:
    waits: list[float] = []
    started = time.monotonic()

    with pytest.raises(UnprocessableContent) as failed:
        list(
            run_limited(
                sleep_after_one_item,
                limits=ProcessLimits(wall_seconds=1.5),
                on_wait=lambda: waits.append(time.monotonic()),
                wait_interval=0.2,
            )
        )

    assert failed.value.reason is FailureReason.TIMEOUT
    assert 1.5 <= time.monotonic() - started < 10
    # Long silences are when a caller heartbeats.
    assert len(waits) >= 3


def test_allocating_past_the_memory_limit_is_too_large() -> None:
    failed = failure(1024, target=allocate, limits=ProcessLimits(memory_bytes=256 * MIB))

    assert failed.reason is FailureReason.TOO_LARGE
    assert "256 MiB" in failed.message


def test_allocating_within_the_memory_limit_works() -> None:
    assert list(run_limited(allocate, 64, limits=ProcessLimits(memory_bytes=256 * MIB))) == [
        64 * MIB
    ]


@pytest.mark.parametrize("signum", [signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGKILL])
def test_a_child_dead_of_a_signal_short_of_its_limits_is_worth_a_retry(signum: int) -> None:
    # Only the limits we set blame the file; under a 1 GiB limit this child is far from it.
    with pytest.raises(ParserKilled) as killed:
        list(run_limited(die_by, int(signum), limits=LIMITS))

    assert signal.Signals(signum).name in str(killed.value)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGABRT])
def test_a_parser_killed_from_outside_is_worth_a_retry_not_blamed_on_the_file(
    signum: int,
) -> None:
    # The host's OOM killer, or an operator, while the parser works.
    items = run_limited(report_pid_then_spin, limits=LIMITS)
    pid = next(items)
    assert isinstance(pid, int)
    os.kill(pid, signum)

    with pytest.raises(ParserKilled, match=signal.Signals(signum).name):
        list(items)


def test_an_abort_at_the_memory_limit_is_too_large() -> None:
    # What an allocation PDFium cannot make under RLIMIT_AS ends in: abort(), unannounced.
    failed = failure(200, target=fill_then_abort, limits=ProcessLimits(memory_bytes=256 * MIB))

    assert failed.reason is FailureReason.TOO_LARGE
    assert "256 MiB" in failed.message


def test_the_hard_cpu_limit_is_a_timeout_whatever_signal_it_ends_in() -> None:
    failed = failure(
        target=spin_ignoring_sigxcpu,
        limits=ProcessLimits(cpu_seconds=1, memory_bytes=512 * MIB, wall_seconds=20),
    )

    assert failed.reason is FailureReason.TIMEOUT


def test_a_failure_the_target_raises_keeps_its_reason() -> None:
    failed = failure("encrypted", target=refuse)

    assert failed.reason is FailureReason.ENCRYPTED
    assert failed.message == "refused by the target"


def test_a_bug_in_the_target_is_worth_a_retry_and_shows_its_traceback() -> None:
    with pytest.raises(ChildFailed, match="ValueError: a bug in the parser"):
        list(run_limited(have_a_bug, limits=LIMITS))


def test_a_child_that_exits_without_an_answer_is_worth_a_retry() -> None:
    with pytest.raises(ChildFailed, match="status 3"):
        list(run_limited(exit_silently, 3, limits=LIMITS))


def test_output_over_the_message_bound_is_too_large() -> None:
    failed = failure(3, target=flood, limits=ProcessLimits(max_message_bytes=2 * MIB))

    assert failed.reason is FailureReason.TOO_LARGE


def test_closing_the_iterator_early_kills_the_child() -> None:
    items = run_limited(sleep_after_one_item, limits=LIMITS)

    assert next(items) == "started"
    items.close()
    # The autouse fixture checks that the child is gone.


def test_a_child_dies_with_a_worker_killed_mid_parse() -> None:
    # A stand-in for the Temporal worker, SIGKILLed while its child spins on one "page":
    # nothing is read from the pipe any more, so only the kernel can stop the child early.
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    child = psutil.Process(int(_last_word(worker.stdout.readline)))
    server = child.parent()
    assert server is not None
    assert server.ppid() == worker.pid

    worker.kill()
    worker.wait()

    # Well before its CPU limit (10 s) would stop it; its fork server goes first.
    server.wait(timeout=5)
    child.wait(timeout=5)


def _last_word(readline: Callable[[], str]) -> str:
    # The stand-in's log (structlog's default, on stdout) comes before the child's pid.
    while not (line := readline()).strip().isdigit():
        assert line, "the stand-in worker ended"
    return line.strip()


KILLED_WORKER = """
from infrastructure.processing.limits import ProcessLimits, run_limited
from tests.integration.test_child_limits import report_pid_then_spin

for pid in run_limited(report_pid_then_spin, limits=ProcessLimits(cpu_seconds=10)):
    print(pid, flush=True)
"""


def test_only_module_level_functions_can_run_in_a_child() -> None:
    def local() -> Iterator[Json]:
        yield None

    with pytest.raises(ValueError, match="module-level"):
        list(run_limited(local, limits=LIMITS))
