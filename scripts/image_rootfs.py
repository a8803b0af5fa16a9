"""The Dockerfile's runtime file system, built without a container engine (for
``scripts/check_image.py``; as root).

1. ``debootstrap --variant=minbase`` of the Dockerfile's Debian release (cached: slow);
2. the runtime stage's own ``RUN`` instructions, executed in a chroot of it (cached per their
   text): its apt packages, its user, ``/data``;
3. a fresh copy of that, into which ``uv sync --locked --no-dev --no-editable`` installs the
   project at ``/opt/venv`` with the build stage's ``ENV`` (``UV_*``); the source and uv are
   then removed, as the runtime stage copies the environment only.

The Dockerfile is read here, not restated: its release, ``RUN``, ``ENV``, ``USER`` and
``WORKDIR`` are what the engine would use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(
    os.environ.get("CHECK_IMAGE_CACHE", Path.home() / ".cache/artifact-pipeline/check-image")
)
# What the Dockerfile copies into its build stage (and .dockerignore lets through).
PROJECT_FILES = (
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "domain",
    "application",
    "infrastructure",
)
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})
BUILD_CA = "/tmp/build-ca.crt"  # noqa: S108 (inside the chroot, removed after the build)
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The sources of Debian's own bookworm images: security updates included.
SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: {suite} {suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class ImageError(Exception):
    """The image would not work; the message says why."""


# --- the Dockerfile, read as the engine would --------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in dockerfile.splitlines():
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            logical.append(current.strip())
        current = ""
    return [(head.upper(), rest.strip()) for head, _, rest in (s.partition(" ") for s in logical)]


def stage(dockerfile: str, name: str) -> list[tuple[str, str]]:
    """The instructions of stage ``name`` (after its FROM)."""
    found: list[tuple[str, str]] | None = None
    for instruction, args in instructions(dockerfile):
        if instruction == "FROM":
            if found is not None:
                return found
            if args.lower().endswith(f" as {name}"):
                found = []
        elif found is not None:
            found.append((instruction, args))
    if found is None:
        raise ImageError(f"the Dockerfile has no stage {name!r}")
    return found


def debian_suite(dockerfile: str) -> str:
    """The Debian release of ``ARG DEBIAN_IMAGE=debian:<suite>-slim``."""
    found = re.search(r"^ARG DEBIAN_IMAGE=debian:([a-z]+)(?:-slim)?$", dockerfile, re.MULTILINE)
    if found is None:
        raise ImageError(
            "the Dockerfile's base is not a Debian image (ARG DEBIAN_IMAGE=debian:...)"
        )
    return found.group(1)


def env_of(instructions_: list[tuple[str, str]]) -> dict[str, str]:
    env = {"PATH": DEBIAN_PATH}
    for instruction, args in instructions_:
        if instruction == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value.replace("$PATH", env["PATH"])
    return env


def last(instructions_: list[tuple[str, str]], name: str) -> str:
    values = [args for instruction, args in instructions_ if instruction == name]
    if not values:
        raise ImageError(f"the runtime stage has no {name}")
    return values[-1]


# --- the file system ------------------------------------------------------------------------


def run(args: list[str], env: Mapping[str, str] | None = None) -> None:
    result = subprocess.run(args, env=env, check=False)
    if result.returncode != 0:
        raise ImageError(f"{shlex.join(args)} exited {result.returncode}")


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4] for line in info]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def remove(path: Path) -> None:
    """Deletes a root file system, never through a mount (a bound /dev would go with it)."""
    for point in sorted(mounts_under(path), reverse=True):
        subprocess.run(["umount", "--recursive", "--lazy", point], check=False)
    if mounts_under(path):
        raise ImageError(f"{path} still has mounts: {mounts_under(path)}")
    if path.exists():
        run(["rm", "-rf", "--one-file-system", str(path)])


@contextlib.contextmanager
def mounted(rootfs: Path, uv_cache: Path | None = None) -> Iterator[None]:
    """/proc, /dev and (for uv) its cache inside ``rootfs``, unmounted afterwards."""
    binds = [(Path("/dev"), rootfs / "dev")]
    if uv_cache is not None:
        uv_cache.mkdir(parents=True, exist_ok=True)
        (rootfs / "root/.cache/uv").mkdir(parents=True, exist_ok=True)
        binds.append((uv_cache, rootfs / "root/.cache/uv"))
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    try:
        run(["mount", "-t", "proc", "proc", str(rootfs / "proc")])
        for source, target in binds:
            run(["mount", "--rbind", str(source), str(target)])
        yield
    finally:
        for point in sorted(mounts_under(rootfs), reverse=True):
            subprocess.run(["umount", "--recursive", "--lazy", point], check=False)


def minbase(suite: str) -> Path:
    target = CACHE / f"{suite}-minbase"
    if not target.exists():
        partial = target.with_suffix(".partial")
        remove(partial)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                suite,
                str(partial),
                "http://deb.debian.org/debian",
            ]
        )
        partial.rename(target)
    return target


def runtime_base(suite: str, runtime: list[tuple[str, str]]) -> Path:
    """minbase + the runtime stage's RUN instructions, cached by their text."""
    runs = [args for instruction, args in runtime if instruction == "RUN"]
    key = hashlib.sha256("\n".join([suite, SOURCES, *runs]).encode()).hexdigest()[:12]
    target = CACHE / f"{suite}-runtime-{key}"
    if target.exists():
        return target
    partial = target.with_suffix(".partial")
    remove(partial)
    run(["cp", "-a", str(minbase(suite)), str(partial)])
    (partial / "etc/apt/sources.list").unlink(missing_ok=True)
    (partial / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES.format(suite=suite))
    env = {"PATH": DEBIAN_PATH, "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    with mounted(partial):
        for command in runs:
            run(["chroot", str(partial), "/bin/sh", "-c", command], env=env)
    partial.rename(target)
    return target


def builder_network(rootfs: Path) -> dict[str, str]:
    """This machine's proxy and CA settings, for the download of the locked packages only
    (what a builder behind the same proxy would be given); the image keeps none of them."""
    env = {k: v for k, v in os.environ.items() if k.lower() in PROXY_VARIABLES}
    ca = os.environ.get("SSL_CERT_FILE")
    if ca and Path(ca).is_file():
        shutil.copyfile(ca, rootfs / BUILD_CA.lstrip("/"))
        env["SSL_CERT_FILE"] = BUILD_CA
    return env


def assemble(base: Path, build: list[tuple[str, str]], uv: str) -> Path:
    """A fresh copy of ``base`` with the project installed as the build stage installs it."""
    work = CACHE / "rootfs"
    remove(work)
    run(["cp", "-a", str(base), str(work)])
    src = work / "src"
    src.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    shutil.copy2(uv, work / "usr/local/bin/uv")
    env = {**env_of(build), "HOME": "/root", **builder_network(work)}
    with mounted(work, uv_cache=CACHE / "uv-cache"):
        run(["chroot", str(work), "/usr/bin/env", "-C", "/src", "uv", "sync", "--locked",
             "--no-dev", "--no-editable", "--quiet"], env=env)  # fmt: skip
    # The runtime stage copies /opt/venv only.
    remove(src)
    (work / BUILD_CA.lstrip("/")).unlink(missing_ok=True)
    (work / "usr/local/bin/uv").unlink()
    return work
