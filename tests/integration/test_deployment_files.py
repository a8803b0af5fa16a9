"""The deployment files, checked without a Docker engine (``make check-compose``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infrastructure.temporal.models import SEARCH_ATTRIBUTES
from scripts.check_compose import ROOT, problems_with


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
    assert "EVENT_STORE=eventstoredb needs EVENTSTOREDB_URI" in problems[0]
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
