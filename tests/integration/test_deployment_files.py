"""The deployment files, checked without a Docker engine (``make check-compose``), and
against the process catalogue (tests/support/processes.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from infrastructure.temporal.models import SEARCH_ATTRIBUTES
from scripts.check_compose import ROOT, problems_with
from scripts.image_rootfs import debian_suite, env_of, last, stage
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


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_no_secret_is_set_in_the_compose_file_only_read_from_a_mounted_file() -> None:
    ours = {n: s for n, s in _compose()["services"].items() if "build" in s}
    for name, service in ours.items():
        env = service["environment"]
        for secret in ("POSTGRES_PASSWORD", "API_KEYS", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"):
            assert secret not in env, f"{name} sets {secret}"
        assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password", name
        assert "postgres_password" in service["secrets"], name


def test_a_secret_file_the_service_does_not_mount_is_refused() -> None:
    compose = {
        "services": {
            "api": {
                "build": ".",
                "command": ["python", "-m", "infrastructure.api"],
                "environment": {"POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password"},
            }
        },
        "secrets": {"postgres_password": {"file": "./secrets/postgres_password"}},
    }
    assert list(problems_with(compose)) == [
        "api: POSTGRES_PASSWORD_FILE names secret 'postgres_password', which it does not mount"
    ]


def test_blobs_go_to_the_object_store_and_no_volume_is_shared_by_the_processes() -> None:
    compose = _compose()
    ours = {n: s for n, s in compose["services"].items() if "build" in s}
    for name, service in ours.items():
        assert service["environment"]["BLOB_STORE"] == "s3", name
        assert not service.get("volumes"), name
        assert service["restart"] == "unless-stopped", name
        assert service["depends_on"]["seaweedfs-bucket"]["condition"] == (
            "service_completed_successfully"
        )


def test_temporal_runs_the_server_image_after_its_schema_and_namespace_jobs() -> None:
    services = _compose()["services"]
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert not any(
        s.get("image", "").startswith("temporalio/auto-setup") for s in services.values()
    )
    schema = services["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert "update-schema" in schema["command"][0]
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    setup = services["temporal-setup"]["command"][0]
    assert "namespace create -n default --retention 720h" in setup
    for key in SEARCH_ATTRIBUTES:
        assert key.name in setup
    assert "--type Keyword" in setup


def test_kurrentdb_keeps_its_image_s_own_health_check() -> None:
    kurrentdb = _compose()["services"]["kurrentdb"]
    assert "healthcheck" not in kurrentdb
    assert kurrentdb["restart"] == "unless-stopped"


def test_worker_metrics_listen_inside_the_network_and_ports_are_published_on_loopback_only() -> (
    None
):
    services = _compose()["services"]
    for name in ("pipeline-worker", "read-worker"):
        assert services[name]["environment"]["METRICS_HOST"] == "0.0.0.0"
    worker = services["temporal-worker"]["environment"]
    assert worker["TEMPORAL_WORKER_METRICS_ADDRESS"].startswith("0.0.0.0:")
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_check_image_reads_the_runtime_stage_from_the_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = stage(dockerfile, "runtime")
    assert debian_suite(dockerfile) == "bookworm"
    installs = [args for instruction, args in runtime if instruction == "RUN" and "apt-get" in args]
    assert installs
    assert "libmagic1" in installs[0]
    assert "python3" in installs[0]
    assert last(runtime, "USER") == "10001:10001"
    assert env_of(runtime)["PATH"].startswith("/opt/venv/bin:/usr/local/sbin")
    build = env_of(stage(dockerfile, "build"))
    assert build["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
    assert build["UV_PYTHON"] == "/usr/bin/python3"
