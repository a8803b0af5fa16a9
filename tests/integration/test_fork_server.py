"""The fork server: one warm process per worker forks a child per document, any number at
once, and a server that dies or hangs costs the documents it ran a retry, never a worker.

The targets and warm-ups below run in the fork server and its children, which import
them by name: they live at module level. Every test checks that no parser outlives it.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from application.processing import UnprocessableContent
from infrastructure.processing.forkserver import fork_server
from infrastructure.processing.limits import (
    MIB,
    ChildFailed,
    Json,
    Preload,
    ProcessLimits,
    WarmUp,
    run_limited,
)
from tests.support import no_parser_outlives

LIMITS = ProcessLimits(cpu_seconds=10, memory_bytes=512 * MIB, wall_seconds=20)
# Set by ``remember`` in the fork server; a child sees it as the server left it.
WARMED: list[Json] = []


def echo(*items: Json) -> Iterator[Json]:
    yield from items


def sleep_then_report(seconds: float) -> Iterator[Json]:
    time.sleep(seconds)
    yield {"pid": os.getpid(), "parent": os.getppid()}


def report_pid_then_spin() -> Iterator[Json]:
    yield os.getpid()
    while True:
        pass


def remember(*args: Json) -> None:
    WARMED.append([os.getpid(), *args])


def report_warmed() -> Iterator[Json]:
    yield {"warmed": WARMED, "parent": os.getppid()}


def start_a_thread() -> None:
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()


@pytest.fixture(autouse=True)
def no_parser_outlives_a_test() -> Iterator[None]:
    with no_parser_outlives():
        yield


def server_pid(limits: ProcessLimits = LIMITS) -> int:
    list(run_limited(echo, limits=limits))  # started, if it was not
    pid = fork_server(limits.preload).pid
    assert pid is not None
    return pid


def test_documents_are_parsed_at_once_each_in_a_child_of_its_own() -> None:
    server = server_pid()
    seen: list[Json] = []

    def parse() -> None:
        seen.extend(run_limited(sleep_then_report, 1.0, limits=LIMITS))

    started = time.monotonic()
    threads = [threading.Thread(target=parse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One after the other would take 4 s.
    assert time.monotonic() - started < 2.5
    assert len({item["pid"] for item in seen if isinstance(item, dict)}) == 4
    assert {item["parent"] for item in seen if isinstance(item, dict)} == {server}


def test_a_document_pays_a_fork_not_an_interpreter_start() -> None:
    server_pid()
    took = []
    for _ in range(20):
        started = time.perf_counter()
        assert list(run_limited(echo, "page", limits=LIMITS)) == ["page"]
        took.append(time.perf_counter() - started)

    # A fresh interpreter with PDFium took 90-330 ms; a fork with its sandbox, a few.
    assert statistics.median(took) < 0.05


def test_one_fork_server_serves_document_after_document() -> None:
    # A child ends while its worker asks for it to be killed (the normal end of every
    # document), over and over: the server handles both in either order.
    server = server_pid()
    failures: list[BaseException] = []

    def parse_many() -> None:
        try:
            for number in range(40):
                assert list(run_limited(echo, number, limits=LIMITS)) == [number]
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=parse_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert fork_server(LIMITS.preload).pid == server


def test_a_killed_fork_server_costs_its_documents_a_retry_and_the_next_gets_a_new_one() -> None:
    server = server_pid()
    items = run_limited(report_pid_then_spin, limits=LIMITS)
    child = psutil.Process(int(str(next(items))))

    os.kill(server, signal.SIGKILL)

    started = time.monotonic()
    with pytest.raises(ChildFailed, match="fork server ended") as failed:
        list(items)
    assert not isinstance(failed.value, UnprocessableContent)
    assert time.monotonic() - started < 5
    child.wait(timeout=5)  # it died with its server
    assert server_pid() != server
    assert list(run_limited(echo, 1, limits=LIMITS)) == [1]


def test_a_fork_server_that_stops_answering_is_killed_rather_than_waited_for() -> None:
    server = server_pid()
    items = run_limited(report_pid_then_spin, limits=LIMITS)
    child = psutil.Process(int(str(next(items))))
    os.kill(server, signal.SIGSTOP)

    started = time.monotonic()
    items.close()

    # The kill request goes unanswered for the grace period; then the server is killed,
    # and its child with it.
    assert time.monotonic() - started < 10
    child.wait(timeout=5)
    assert not psutil.pid_exists(server) or psutil.Process(server).status() == "zombie"
    assert list(run_limited(echo, 1, limits=LIMITS)) == [1]


def test_the_preload_is_imported_and_warmed_up_once_in_the_server_before_any_child() -> None:
    # By the name the worker knows this module by (pytest may import it as a top-level one).
    preload = Preload(modules=(__name__,), warm_ups=(WarmUp(f"{__name__}:remember", ("eng", 2)),))
    limits = ProcessLimits(preload=preload)

    first, second = (next(run_limited(report_warmed, limits=limits)) for _ in "ab")

    server = fork_server(preload).pid
    assert first == second == {"warmed": [[server, "eng", 2]], "parent": server}
    assert server != fork_server(LIMITS.preload).pid


def test_a_preload_that_does_not_import_fails_the_document_with_its_traceback() -> None:
    limits = ProcessLimits(preload=Preload(modules=("no_such_parser",)))

    with pytest.raises(ChildFailed, match="ModuleNotFoundError: No module named 'no_such_parser'"):
        list(run_limited(echo, limits=limits))


def test_a_warm_up_that_starts_a_thread_is_refused() -> None:
    # A fork copies only the forking thread: a child could hang on a lock the other holds.
    preload = Preload(warm_ups=(WarmUp(f"{__name__}:start_a_thread"),))

    with pytest.raises(ChildFailed, match="started threads"):
        list(run_limited(echo, limits=ProcessLimits(preload=preload)))


def test_content_travels_as_the_input_file_not_as_arguments() -> None:
    with pytest.raises(ValueError, match="input file"):
        list(run_limited(echo, "x" * 100_000, limits=LIMITS))
