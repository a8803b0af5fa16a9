"""``python -m bench [--quick] [--store sqlite|postgres|all] [--only NAME]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from temporalio.client import Client

from bench import e2e, ingest, lag, memory, ocr_throughput, pdf_throughput, plots, scale, trigger
from bench.report import RESULTS_PATH, Result, table, write_results
from infrastructure.config import Settings
from infrastructure.logging import configure_logging
from tests.support import postgres_reachable, start_dev_server

SCENARIOS = ("trigger", "ingest", "lag", "end_to_end", "scale", "memory", "pdf", "ocr")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--store", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "all" else [args.store]
    if "postgres" in stores and not postgres_reachable():
        if args.store == "postgres":
            raise SystemExit("PostgreSQL is not reachable at 127.0.0.1:5432 (database test)")
        print("PostgreSQL not reachable at 127.0.0.1:5432: SQLite only", file=sys.stderr)
        stores.remove("postgres")
    scenarios = [args.only] if args.only else list(SCENARIOS)
    # The in-process pipeline worker logs a line per start: at INFO that would drown the
    # table, and writing it to a terminal costs more than the service's JSON to a pipe.
    configure_logging(Settings(log_level="WARNING", log_format="json"))
    results = asyncio.run(_run(scenarios, stores, quick=args.quick))
    print(table(results))
    for r in results:
        rounds = f"; rounds (project, baseline): {_rounds(r)}" if r.rounds else ""
        print(f"  {r.name}: {r.note}{rounds}")
    write_results(results)
    print(f"written to {RESULTS_PATH}")
    for png in plots.draw():
        print(f"drawn {png}")


async def _run(scenarios: list[str], stores: list[str], *, quick: bool) -> list[Result]:
    results: list[Result] = []
    env = await start_dev_server(log_level="error")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            root = Path(tmp)
            address = env.client.service_client.config.target_host
            for store in stores:
                if "trigger" in scenarios:
                    r = await trigger.run(
                        env.client, root, store, n=300 if quick else 2000, rounds=2 if quick else 3
                    )
                    print(f"{r.name}: ratio {r.ratio:.2f}", file=sys.stderr)
                    results.append(r)
                if "ingest" in scenarios:
                    r = await ingest.run(
                        address, root, store, seconds=2 if quick else 10, rounds=2 if quick else 3
                    )
                    print(f"{r.name}: ratio {r.ratio:.2f}", file=sys.stderr)
                    results.append(r)
                if "ingest" in scenarios and store == stores[0]:
                    # Object storage: the API on SeaweedFS against itself on the local
                    # directory; the event store is the same on both sides, so once.
                    r = await ingest.run_s3(
                        address, root, store, seconds=2 if quick else 10, rounds=2 if quick else 3
                    )
                    print(f"{r.name}: ratio {r.ratio:.2f}", file=sys.stderr)
                    results.append(r)
                if "lag" in scenarios:
                    r = await lag.run(env.client, root, store, seconds=8 if quick else 60)
                    print(f"{r.name}: {r.value:.0f} ms", file=sys.stderr)
                    results.append(r)
                if "end_to_end" in scenarios:
                    r = await e2e.run(
                        env.client, root, store, n=30 if quick else 200, rounds=2 if quick else 3
                    )
                    print(f"{r.name}: ratio {r.ratio:.2f}", file=sys.stderr)
                    results.append(r)
                if "scale" in scenarios:
                    rs = await scale.run(root, store, quick=quick)
                    print(", ".join(f"{r.name}: ratio {r.ratio:.2f}" for r in rs), file=sys.stderr)
                    results.extend(rs)
            # The store plays no part in these: measured once, on SQLite.
            results += await _memory_and_pdf(env.client, root, scenarios, quick=quick)
    finally:
        await env.shutdown()
    return results


async def _memory_and_pdf(
    client: Client, root: Path, scenarios: list[str], *, quick: bool
) -> list[Result]:
    results: list[Result] = []
    if "memory" in scenarios or "pdf" in scenarios:
        pdf = await asyncio.to_thread(pdf_throughput.text_pdf, root / "bench-500p.pdf")
    if "memory" in scenarios:
        address = client.service_client.config.target_host
        size = (200 if quick else 1024) * 1024 * 1024
        results.append(await memory.api_upload(address, root, size=size))
        results.append(await memory.worker_pdf(client, root, pdf, pages=pdf_throughput.PAGES))
    if "pdf" in scenarios:
        results.append(await pdf_throughput.run(root, pdf, rounds=3 if quick else 7))
    if "ocr" in scenarios:
        # OCR's own rows: its throughput, and the worker's memory over a long scan.
        results.append(await ocr_throughput.run(root, quick=quick, rounds=2 if quick else 3))
        pages = 20 if quick else 100
        scan = await asyncio.to_thread(ocr_throughput.scan_pdf, root / "memory-scan", pages)
        results.append(await memory.worker_ocr(client, root, scan, pages=pages))
    for r in results:
        print(f"{r.name}: {r.value:.1f} {r.unit} (baseline {r.baseline:.1f})", file=sys.stderr)
    return results


def _rounds(r: Result) -> str:
    return ", ".join(f"({v:.0f}, {b:.0f})" for v, b in r.rounds)


if __name__ == "__main__":
    main()
