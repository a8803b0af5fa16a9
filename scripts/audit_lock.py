"""Known vulnerabilities in the locked runtime dependencies: ``make audit`` (and CI).

pip-audit asks PyPI for each pinned version (``/pypi/<name>/<version>/json``) or OSV. Where
those answer, this runs pip-audit and its verdict stands. Where they do not (the build
machines here reach PyPI only through a proxy that serves the project endpoint
``/pypi/<name>/json`` and nothing per version), it falls back to what that endpoint does carry:
the advisories (PyPI's copy of OSV) affecting the project's *latest* release. A pin that is the
latest release is therefore audited exactly; a pin behind it cannot be, and is listed as not
audited rather than passed.

Exits 1 on any known vulnerability in an audited pin, or when a package named with
``--require-audited`` could not be audited (the upload path's parsers: a stale pin there
must be looked at, not skipped). Prints one line per finding and the coverage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import httpx

PYPI = "https://pypi.org/pypi"
# The packages that parse what strangers upload: multipart bodies, HTTP, PDF.
PIP_AUDIT = [sys.executable, "-m", "pip_audit", "--strict", "--disable-pip", "--no-deps", "-r"]
UPLOAD_PATH = ("python-multipart", "starlette", "pypdfium2", "h11", "pillow")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str


@dataclass
class Finding:
    pin: Pin
    latest: str
    advisories: list[str] = field(default_factory=list)

    @property
    def audited(self) -> bool:
        return self.pin.version == self.latest


def locked_runtime_pins() -> list[Pin]:
    """``name==version`` of every runtime dependency in uv.lock (dev tools excluded)."""
    # `uv run` says where it is in UV; otherwise it must be on PATH.
    uv = os.environ.get("UV") or shutil.which("uv") or sys.exit("uv not found: run `make install`")
    exported = subprocess.run(
        [uv, "export", "--locked", "--no-dev", "--no-emit-project", "--no-hashes", "--quiet"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = []
    for line in exported.splitlines():
        requirement = line.split(";")[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            name, version = requirement.split("==", 1)
            pins.append(Pin(name.strip().lower(), version.strip()))
    return pins


def per_version_endpoint_answers(http: httpx.Client) -> bool:
    """Whether PyPI serves ``/pypi/<name>/<version>/json``, which pip-audit needs."""
    try:
        return http.get(f"{PYPI}/pip/24.0/json").status_code == 200
    except httpx.HTTPError:
        return False


async def _latest(http: httpx.AsyncClient, pin: Pin, limit: asyncio.Semaphore) -> Finding:
    async with limit:
        response = await http.get(f"{PYPI}/{pin.name}/json")
    response.raise_for_status()
    project = response.json()
    return Finding(
        pin=pin,
        latest=project["info"]["version"],
        advisories=[
            " ".join([v["id"], *v.get("aliases", [])[:2]])
            for v in project.get("vulnerabilities", [])
        ],
    )


async def project_endpoint_findings(
    pins: list[Pin], transport: httpx.AsyncBaseTransport | None = None
) -> list[Finding]:
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=30, follow_redirects=True, transport=transport) as http:
        return list(await asyncio.gather(*(_latest(http, p, limit) for p in pins)))


def run_pip_audit(pins: list[Pin]) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write("".join(f"{p.name}=={p.version}\n" for p in pins))
        requirements.flush()
        return subprocess.run(
            [*PIP_AUDIT, requirements.name],
            check=False,
        ).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--require-audited",
        nargs="*",
        default=list(UPLOAD_PATH),
        metavar="PACKAGE",
        help="fail when one of these cannot be audited (default: the upload path's parsers)",
    )
    args = parser.parse_args()
    pins = locked_runtime_pins()
    with httpx.Client(timeout=30, follow_redirects=True) as http:
        if per_version_endpoint_answers(http):
            print(f"pip-audit over {len(pins)} locked runtime pins")
            return run_pip_audit(pins)
    print("PyPI's per-version endpoint does not answer here: auditing against the advisories")
    print("PyPI publishes for each project's latest release (see scripts/audit_lock.py)")
    findings = asyncio.run(project_endpoint_findings(pins))
    failed, lines = verdict(findings, required=set(args.require_audited))
    print("\n".join(lines))
    return 1 if failed else 0


def verdict(findings: list[Finding], *, required: set[str]) -> tuple[bool, list[str]]:
    """Whether the audit fails, and the lines that say why (findings, then coverage)."""
    failed, lines = False, []
    for f in sorted(findings, key=lambda f: f.pin.name):
        if f.audited and f.advisories:
            failed = True
            lines.append(f"VULNERABLE {f.pin.name}=={f.pin.version}: {'; '.join(f.advisories)}")
        elif not f.audited and f.pin.name in required:
            failed = True
            lines.append(
                f"NOT AUDITED {f.pin.name}=={f.pin.version} (latest {f.latest}): upgrade the pin"
            )
    behind = ", ".join(f"{f.pin.name}=={f.pin.version}" for f in findings if not f.audited)
    audited = sum(f.audited for f in findings)
    lines.append(
        f"audited {audited} of {len(findings)} pins; not audited (pin behind the latest "
        f"release): {behind or '-'}"
    )
    return failed, lines


if __name__ == "__main__":
    sys.exit(main())
