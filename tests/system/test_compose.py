"""docker-compose.yml runs the whole stack (checked statically: no Docker engine here)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_has_every_process(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "rabbitmq",
        "migrate",
        "api",
        "worker",
        "scheduler",
    }
    assert services["api"]["command"][:2] == ["uvicorn", "backend.main:app"]
    assert services["worker"]["command"][:3] == ["taskiq", "worker", "backend.worker:broker"]
    assert services["scheduler"]["command"][:3] == [
        "taskiq",
        "scheduler",
        "backend.scheduler:scheduler",
    ]
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]


def test_redis_persists_with_aof(compose: dict) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert compose["services"]["redis"]["volumes"]


def test_ordering_by_health(compose: dict) -> None:
    services = compose["services"]
    for backing in ("postgres", "redis", "rabbitmq", "api"):
        assert "healthcheck" in services[backing], backing
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for process in ("api", "worker", "scheduler"):
        depends = services[process]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["rabbitmq"]["condition"] == "service_healthy"


def test_docker_compose_file_follows_the_compose_spec() -> None:
    # No Docker Compose client here: validate against the Compose Specification's JSON schema
    # (vendored by check-jsonschema), which is what `docker compose config` checks first.
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_processes_share_one_fresh_metrics_directory(compose: dict) -> None:
    volumes = compose["volumes"]
    for process in ("api", "worker", "scheduler"):
        service = compose["services"][process]
        directory = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert f"metrics:{directory}" in service["volumes"], process
    # tmpfs: empty whenever the stack starts again, so no stale samples are merged in
    assert volumes["metrics"]["driver_opts"]["type"] == "tmpfs"
