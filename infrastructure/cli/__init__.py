"""``artifacts``: upload files, watch them being processed, look them up, from a shell.

A thin client of the HTTP API (``client.py``); progress goes to stderr when it is a
terminal (``progress.py``), results to stdout, as text or ``--json`` (``output.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infrastructure.cli.client import (
    ArtifactsClient,
    NotFound,
    Refused,
    Unreachable,
    View,
)
from infrastructure.cli.output import (
    chunk_text,
    dead_letter_line,
    describe,
    list_line,
    page_line,
    print_items,
    print_json,
    result_line,
)
from infrastructure.cli.progress import ProgressLine, bar

OK, FAILED, USAGE, UNREACHABLE, NOT_FOUND = 0, 1, 2, 3, 4
DEFAULT_URL = "http://127.0.0.1:8000"
FINAL = ("processed", "failed", "cancelled")
STATUSES = ("uploaded", "processing", "processed", "failed", "cancelled")
POLL_SECONDS = 0.5
# The workers that keep dead letters (GET /dead-letters).
CONSUMERS = ("pipeline_worker", "read_worker")

EPILOG = f"""\
environment:
  ARTIFACTS_URL      the API's base URL (default {DEFAULT_URL}); --url overrides it
  ARTIFACTS_API_KEY  sent as "Authorization: Bearer <key>"; --api-key overrides it

exit codes:
  0  done: every artifact processed (or uploaded, without --wait; found, for show/list
     and the results)
  1  some artifact failed, an upload, reprocessing, cancel or delete was refused, or
     --wait timed out (cancel --wait: 0 once the run is cancelled; delete --wait: 0 once
     every artifact is gone)
  2  usage error (bad arguments, a file that cannot be read)
  3  the server could not be reached, failed (5xx) or refused the API key (401/403)
  4  no such artifact (or dead letter; or it was erased), or it has no such result
     (yet): the message says why (delete: some id was not found)
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit code (the console script exits with it)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's own usage error (2)
        return int(exit_.code or 0)
    command: Callable[[ArtifactsClient, argparse.Namespace], int] = args.command
    try:
        with ArtifactsClient(args.url, api_key=args.api_key or None) as client:
            return command(client, args)
    except NotFound as err:
        _error(f"not found: {err}")
        return NOT_FOUND
    except Unreachable as err:
        _error(str(err))
        return UNREACHABLE
    except Refused as err:
        _error(f"refused: {err}")
        return FAILED


def _parser() -> argparse.ArgumentParser:
    # The connection options are accepted before or after the command; after wins.
    def connection(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
        url = os.environ.get("ARTIFACTS_URL", DEFAULT_URL) if defaults else argparse.SUPPRESS
        key = os.environ.get("ARTIFACTS_API_KEY") if defaults else argparse.SUPPRESS
        parser.add_argument("--url", default=url, help="the API's base URL (ARTIFACTS_URL)")
        parser.add_argument("--api-key", default=key, help="Bearer API key (ARTIFACTS_API_KEY)")

    common = argparse.ArgumentParser(add_help=False)
    connection(common, defaults=False)
    main = argparse.ArgumentParser(
        prog="artifacts",
        description="Upload files to the artifact pipeline and watch them being processed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connection(main, defaults=True)
    commands = main.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=help,
            description=help,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(command=run)
        return sub

    def waiting(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--wait", action="store_true", help="wait until the run has an outcome")
        sub.add_argument(
            "--timeout", type=float, default=600, help="seconds --wait waits (default 600)"
        )

    def as_json(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print JSON to stdout")

    upload = command("upload", _upload, "upload files (multipart, streamed)")
    upload.add_argument("files", nargs="+", type=Path, metavar="FILE")
    waiting(upload)
    as_json(upload)

    show = command("show", _show, "show an artifact: facts, results, summary, history")
    show.add_argument("id", metavar="ID")
    as_json(show)

    for name, help_ in (
        ("text", "write an artifact's extracted text to stdout (pages end with a form feed)"),
        ("markdown", "write an artifact's Markdown to stdout"),
    ):
        fetch = command(name, _download, help_)
        fetch.add_argument("id", metavar="ID")
        fetch.set_defaults(result=name)

    chunks = command("chunks", _chunks, "print an artifact's chunks: where each is, its text")
    pages = command(
        "pages", _pages, "print where each page's text came from: text layer, OCR or none"
    )
    for sub in (chunks, pages):
        sub.add_argument("id", metavar="ID")
        sub.add_argument("--offset", type=_natural, default=0, metavar="N", help="skip N")
        sub.add_argument("--limit", type=_positive, metavar="N", help="at most N (default all)")
        sub.add_argument(
            "--json", action="store_true", help="the server's JSON array, as it is, to stdout"
        )

    list_ = command("list", _list, "list artifacts, newest first")
    list_.add_argument("--status", choices=STATUSES)
    list_.add_argument("--mime-type", metavar="M", help="sniffed MIME type, e.g. application/pdf")
    list_.add_argument("--limit", type=_positive, default=50, metavar="N", help="default 50")
    as_json(list_)

    reprocess = command("reprocess", _reprocess, "process an artifact again, as a new run")
    reprocess.add_argument("id", metavar="ID")
    waiting(reprocess)
    as_json(reprocess)

    cancel = command("cancel", _cancel, "stop an artifact's run in flight (status cancelled)")
    cancel.add_argument("id", metavar="ID")
    waiting(cancel)
    as_json(cancel)

    delete = command(
        "delete",
        _delete,
        "erase artifacts for good: their files, results and personal data (a run in "
        "flight is cancelled first)",
    )
    delete.add_argument("ids", nargs="+", metavar="ID")
    waiting(delete)
    as_json(delete)

    # Admin: needs an admin key (ADMIN_API_KEYS) unless the API runs without any keys.
    dead = command(
        "dead-letters", _dead_letters, "list the events the workers could not handle (admin)"
    )
    dead.add_argument("--consumer", choices=CONSUMERS, help="only this worker's")
    as_json(dead)
    actions = dead.add_subparsers(title="actions", metavar="ACTION")
    retry = actions.add_parser(
        "retry",
        parents=[common],
        help="have the worker handle a dead letter again, once its cause is fixed",
    )
    retry.add_argument("consumer", choices=CONSUMERS, metavar="CONSUMER")
    retry.add_argument("position", type=_positive, metavar="POSITION")
    as_json(retry)
    retry.set_defaults(command=_retry_dead_letter)
    return main


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _natural(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return number


# --- Commands ---------------------------------------------------------------------------


def _upload(client: ArtifactsClient, args: argparse.Namespace) -> int:
    paths: list[Path] = args.files
    unreadable = [path for path in paths if not path.is_file() or not os.access(path, os.R_OK)]
    if unreadable:
        _error(f"cannot read: {', '.join(map(str, unreadable))}")
        return USAGE

    results: list[View] = []
    accepted: list[tuple[str, int]] = []
    for path in paths:
        try:
            body = _upload_one(client, path)
        except Refused as err:
            _error(f"{path}: {err}")
            results.append({"file": str(path), "error": str(err)})
            continue
        accepted.append((body["id"], 0))
        results.append({"file": str(path), **body})

    if args.wait and accepted:
        finished = _wait(client, accepted, args.timeout)
        results = [{**result, **finished.get(result.get("id", ""), {})} for result in results]
    print_items(results, args.json, result_line)
    return _outcome(results, args.wait)


def _upload_one(client: ArtifactsClient, path: Path) -> View:
    line = ProgressLine(sys.stderr)
    size = path.stat().st_size
    try:
        body = client.upload(path, lambda sent: line.draw(bar(path.name, sent, size)))
    except Refused:
        line.done(f"{path.name}: refused")
        raise
    line.done(bar(path.name, size, size))
    return body


def _show(client: ArtifactsClient, args: argparse.Namespace) -> int:
    view = client.get(args.id)
    if args.json:
        print_json(view)
    else:
        describe(view)
    return OK


def _download(client: ArtifactsClient, args: argparse.Namespace) -> int:
    sys.stdout.flush()
    client.download(args.id, args.result, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return OK


def _chunks(client: ArtifactsClient, args: argparse.Namespace) -> int:
    return _items(client, args, "chunks", chunk_text)


def _pages(client: ArtifactsClient, args: argparse.Namespace) -> int:
    return _items(client, args, "pages", page_line)


def _items(
    client: ArtifactsClient, args: argparse.Namespace, name: str, show: Callable[[View], str]
) -> int:
    window = {"offset": args.offset or None, "limit": args.limit}
    if args.json:
        # Passed through as the server sends it: a long document's chunks are never parsed.
        sys.stdout.flush()
        client.download(args.id, name, sys.stdout.buffer, **window)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    else:
        print_items(client.items(args.id, name, **window), False, show)
    return OK


def _list(client: ArtifactsClient, args: argparse.Namespace) -> int:
    items = client.list(status=args.status, mime_type=args.mime_type, limit=args.limit)
    print_items(items, args.json, list_line)
    return OK


def _reprocess(client: ArtifactsClient, args: argparse.Namespace) -> int:
    accepted = client.reprocess(args.id)
    result = accepted
    if args.wait:
        result = _wait(client, [(accepted["id"], accepted["run"])], args.timeout)[accepted["id"]]
    print_items([result], args.json, result_line)
    return _outcome([result], args.wait)


def _cancel(client: ArtifactsClient, args: argparse.Namespace) -> int:
    accepted = client.cancel(args.id)
    result = accepted
    if args.wait:
        result = _wait(client, [(accepted["id"], accepted["run"])], args.timeout)[accepted["id"]]
    print_items([result], args.json, result_line)
    ok = "error" not in result and (not args.wait or result.get("status") == "cancelled")
    return OK if ok else FAILED


def _delete(client: ArtifactsClient, args: argparse.Namespace) -> int:
    results: list[View] = []
    for artifact_id in args.ids:
        try:
            results.append({"id": artifact_id, "status": client.delete(artifact_id)})
        except NotFound:
            results.append({"id": artifact_id, "status": "not found"})
        except Refused as err:
            _error(f"{artifact_id}: {err}")
            results.append({"id": artifact_id, "status": "refused"})
    erasing = [result for result in results if result["status"] == "erasing"]
    if args.wait and erasing:
        gone = _wait_gone(client, [result["id"] for result in erasing], args.timeout)
        for result in erasing:
            result["status"] = "deleted" if result["id"] in gone else "erasing"
    print_items(results, args.json, lambda result: f"{result['id']}\t{result['status']}")
    statuses = {result["status"] for result in results}
    if "refused" in statuses or (args.wait and "erasing" in statuses):
        return FAILED
    return NOT_FOUND if "not found" in statuses else OK


def _dead_letters(client: ArtifactsClient, args: argparse.Namespace) -> int:
    print_items(client.dead_letters(consumer=args.consumer), args.json, dead_letter_line)
    return OK


def _retry_dead_letter(client: ArtifactsClient, args: argparse.Namespace) -> int:
    print_items(
        [client.retry_dead_letter(args.consumer, args.position)], args.json, dead_letter_line
    )
    return OK


# --- Waiting ------------------------------------------------------------------------------


def _wait(client: ArtifactsClient, runs: list[tuple[str, int]], timeout: float) -> dict[str, View]:
    """Polls each artifact until its run (or a later one) has an outcome.

    Returns the last view of each; one still unfinished at the deadline keeps its status.
    """
    line = ProgressLine(sys.stderr)
    views: dict[str, View] = {}
    pending = dict(runs)
    started = time.monotonic()
    while True:
        for artifact_id, run in list(pending.items()):
            view = client.get(artifact_id)
            views[artifact_id] = view
            if view["status"] in FINAL and view["run"] >= run:
                del pending[artifact_id]
        elapsed = time.monotonic() - started
        done = len(runs) - len(pending)
        label = f"waiting {done}/{len(runs)} done, {elapsed:.0f} s"
        if not pending or elapsed > timeout:
            line.done(label)
            break
        current = views[next(iter(pending))]
        line.draw(f"{label} ({current['filename']}: {current['status']})", force=True)
        time.sleep(POLL_SECONDS)
    for artifact_id in pending:
        _error(f"{artifact_id}: still {views[artifact_id]['status']} after {timeout:.0f} s")
    return views


def _wait_gone(client: ArtifactsClient, ids: list[str], timeout: float) -> set[str]:
    """Polls each artifact being erased until it no longer answers; returns those gone."""
    line = ProgressLine(sys.stderr)
    pending, gone = list(ids), set[str]()
    started = time.monotonic()
    while True:
        for artifact_id in list(pending):
            if client.gone(artifact_id):
                gone.add(artifact_id)
                pending.remove(artifact_id)
        elapsed = time.monotonic() - started
        label = f"erasing {len(gone)}/{len(ids)} done, {elapsed:.0f} s"
        if not pending or elapsed > timeout:
            line.done(label)
            break
        line.draw(label, force=True)
        time.sleep(POLL_SECONDS)
    for artifact_id in pending:
        _error(f"{artifact_id}: still erasing after {timeout:.0f} s")
    return gone


def _outcome(results: list[View], waited: bool) -> int:
    wanted = "processed" if waited else None
    ok = all(
        "error" not in result and (wanted is None or result.get("status") == wanted)
        for result in results
    )
    return OK if ok else FAILED


def _error(message: str) -> None:
    print(f"artifacts: {message}", file=sys.stderr)
