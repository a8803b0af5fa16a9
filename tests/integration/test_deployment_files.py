"""The deployment files, checked without a Docker engine (``make check-compose``), and
against the process catalogue (tests/support/processes.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from infrastructure.temporal.models import SEARCH_ATTRIBUTES
from scripts.check_compose import ROOT, problems_with
from tests.support import PROCESSES, compose_service, procfile


def test_the_compose_file_and_the_dockerfile_pass_their_checks() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_compose.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_variable_that_no_setting_reads_is_refused() -> None:
    compose = {
        "services": {
            "api": {
                "build": ".",
                "command": ["python", "-m", "infrastructure.api"],
                "environment": {"EVENT_STORE": "postgres", "TEMPORAL_ADRESS": "temporal:7233"},
            }
        }
    }
    assert list(problems_with(compose)) == [
        "api: TEMPORAL_ADRESS is not a setting (infrastructure/config.py)"
    ]


def test_settings_that_would_fail_at_start_are_refused_here_first() -> None:
    compose = {
        "services": {
            "worker": {
                "build": ".",
                "command": ["python", "-m", "infrastructure.read_worker_that_is_not_there"],
                "environment": ["EVENT_STORE=eventstoredb", "POSTGRES_PASSWORD=${PG:-secret}"],
            }
        }
    }
    problems = list(problems_with(compose))
    assert len(problems) == 2
    assert "needs KURRENTDB_URI (or EVENTSTOREDB_URI)" in problems[0]
    assert problems[1] == "worker: no module infrastructure.read_worker_that_is_not_there"


def test_the_compose_schema_check_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    depends_on: {db: {condition: up}}\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_compose.py"), "--compose", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "no service is built from the Dockerfile" in result.stderr
    assert "condition" in result.stdout + result.stderr


def test_make_dev_registers_every_search_attribute_the_workflow_sets() -> None:
    for name in ("Procfile", "Makefile"):
        text = (ROOT / name).read_text()
        for key in SEARCH_ATTRIBUTES:
            assert f"--search-attribute {key.name}=Keyword" in text, name


def test_the_procfile_is_the_one_the_process_catalogue_generates() -> None:
    assert (ROOT / "Procfile").read_text() == procfile()


def test_the_compose_services_run_the_catalogue_s_processes_and_check_their_health() -> None:
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    ours = {name: s for name, s in compose["services"].items() if "build" in s}
    assert set(ours) == {compose_service(name) for name in PROCESSES}
    for name, module in PROCESSES.items():
        service = ours[compose_service(name)]
        assert service["command"] == ["python", "-m", module], name
        assert service["healthcheck"]["test"][-2:] == ["infrastructure.healthcheck", name]


def test_each_process_has_a_make_target_that_runs_its_module() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for name, module in PROCESSES.items():
        target = f"run-{compose_service(name)}"
        recipe = re.search(rf"^{target}:.*\n\t(.*)$", makefile, re.MULTILINE)
        assert recipe is not None, f"no target {target}"
        assert recipe.group(1).endswith(f"python -m {module}"), target
