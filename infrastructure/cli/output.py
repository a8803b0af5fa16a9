"""What the CLI prints: one line per artifact, a description of one, or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from infrastructure.cli.client import View
from infrastructure.cli.progress import human_size

# What a warning in the results means, beside its machine-readable word.
WARNINGS = {
    "no_text": " (no text was found in the document, not even by OCR)",
    "ocr_timeout": " (OCR of a page ran out of time: it has the words read by then)",
}
# The results an artifact may have, as the CLI's commands (and the API's links) name them.
RESULTS = ("text", "markdown", "chunks", "pages")


def print_items(items: list[View], as_json: bool, line: Callable[[View], str]) -> None:
    if as_json:
        print_json(items)
    else:
        for item in items:
            print(line(item))


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def result_line(result: View) -> str:
    if "error" in result:
        return f"-\trefused\t{result['file']}\t{result['error']}"
    name = result.get("file") or result.get("filename", "")  # the path as given, if any
    failure = result.get("failure")
    reason = f"\t{failure['reason']}: {failure['message']}" if failure else ""
    return f"{result['id']}\t{result['status']}\t{name}{reason}"


def list_line(item: View) -> str:
    return "\t".join(
        [
            item["id"],
            item["status"],
            item["mime_type"] or "-",
            human_size(item["size"]),
            item["filename"],
        ]
    )


def chunk_text(chunk: View) -> str:
    """A chunk as a reader skims it: where it is, then its text, then a blank line."""
    pages = chunk["pages"]
    where = [f"#{chunk['index']}"]
    if pages:
        first, last = pages
        where.append(f"page {first}" if first == last else f"pages {first}-{last}")
    where.append(f"{chunk['chars']} characters")
    if chunk["headings"]:
        where.append(" > ".join(chunk["headings"]))
    return f"{'  '.join(where)}\n{chunk['text']}\n"


def page_line(page: View) -> str:
    confidence = page["confidence"]
    return "\t".join(
        [
            str(page["number"]),
            page["source"],
            "-" if confidence is None else f"{confidence:.1f}",
            str(page["chars"]),
        ]
    )


def dead_letter_line(item: View) -> str:
    return "\t".join(
        [
            item["consumer"],
            str(item["position"]),
            item["status"],
            f"attempts={item['attempts']}",
            item["topic"].rpartition(".")[2],
            item["originator_id"],
            item["error"],
        ]
    )


def describe(view: View) -> None:
    facts = {
        "id": view["id"],
        "filename": view["filename"],
        "status": view["status"],
        "size": f"{human_size(view['size'])} ({view['size']} bytes)",
        "uploaded as": view["content_type"],
        "sniffed type": view["mime_type"] or "-",
        "sha256": view["sha256"],
        "run": view["run"],
        "workflow": view["workflow_id"],
        "temporal": view["links"]["temporal"],
    }
    for name, value in facts.items():
        print(f"{name + ':':14}{value}")
    if results := view["results"]:
        details = ", ".join(f"{k}={v}" for k, v in results["details"].items())
        pages = (
            f", {_counted(results['page_count'], 'page')}"
            if results["page_count"] is not None
            else ""
        )
        chars = _counted(results["char_count"], "character")
        print(f"{'results:':14}{results['kind']}{pages}, {chars}")
        if details:
            print(f"{'':14}{details}")
        print(f"{'language:':14}{results.get('language') or 'not detected'}")
        for warning in results.get("warnings", []):
            print(f"{'warning:':14}{warning}{WARNINGS.get(warning, '')}")
        links = view["links"]
        outputs = [name for name in RESULTS if links.get(name)]
        if outputs:
            print(f"{'outputs:':14}{' '.join(outputs)}  (artifacts {'|'.join(outputs)} ID)")
    if failure := view["failure"]:
        print(f"{'failure:':14}{failure['reason']}: {failure['message']}")
    if summary := view["summary"]:
        print(f"{'summary:':14}{summary['text']}")
        print(f"{'':14}({summary['source']}, {summary['model']})")
    print("history:")
    for entry in view["history"]:
        print(f"  {entry['at']}  {entry['type']}")


def _counted(number: int, noun: str) -> str:
    """``1 page``, ``2 pages``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
