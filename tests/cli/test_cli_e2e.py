"""The `taskhub` CLI as a user drives it: a subprocess against a real API (and a real worker
for `run --wait`), from login to apply, export and runs."""

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_process import ApiServer, start_api
from tests.support.processes import ROOT, log_path, stop
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e
SUFFIX = uuid.uuid4().hex[:8]
NAP, FAILING = f"cli nap {SUFFIX}", f"cli failing {SUFFIX}"
DOCUMENT = f"""\
configs:
  - name: {NAP}
    task_type: demo.sleep
    scheduler_type: interval
    schedule_config: {{minutes: 5}}
    parameters: {{seconds: 0, message: hi}}
    schedule_status: active
  - name: {FAILING}
    task_type: demo.sleep
    scheduler_type: manual
    parameters: {{fail: true, message: failing as asked}}
"""


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[ApiServer]:
    server = await start_api()
    yield server
    stop(server.process)


@pytest.fixture(scope="module")
async def worker() -> AsyncIterator[Worker]:
    started = await Worker(log_path("cli-worker")).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
async def token(api: ApiServer, superuser_headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        created = await http.post(
            "/api/v1/tokens", json={"name": f"cli test {SUFFIX}"}, headers=superuser_headers
        )
    assert created.status_code == 201, created.text
    return created.json()["token"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


def taskhub(
    *args: str, home: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`taskhub ARGS` (as `python -m backend.cli`, the console script's module)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    clean.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=ROOT, env={**clean, "HOME": str(home), **env},
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


async def test_without_credentials_it_says_taskhub_login(tmp_path: Path) -> None:
    result = taskhub("configs", home=tmp_path)
    assert result.returncode == 2
    assert "taskhub login" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_session(api: ApiServer, token: str, home: Path, worker: Worker,
                         tmp_path: Path) -> None:  # fmt: skip
    # login with an API token: kept in ~/.config/taskhub/credentials, mode 0600
    out = ok(taskhub("login", "--url", api.base_url, home=home, TASKHUB_TOKEN=token))
    assert "Signed in" in out
    assert "admin" in out
    credentials = home / ".config" / "taskhub" / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    document = tmp_path / "schedules.yaml"
    document.write_text(DOCUMENT)
    out = ok(taskhub("apply", "-f", str(document), home=home))
    assert f"+ create  {NAP}" in out
    assert f"+ create  {FAILING}" in out
    assert "Applied: 2 to create" in out

    out = ok(taskhub("apply", "-f", str(document), home=home))
    assert "0 to create, 0 to update, 0 to delete, 2 unchanged" in out

    document.write_text(DOCUMENT.replace("minutes: 5", "minutes: 10"))
    out = ok(taskhub("apply", "-f", str(document), home=home))
    assert f"~ update  {NAP}" in out
    assert "schedule_config: {minutes: 5} -> {minutes: 10}" in out

    out = ok(taskhub("apply", "-f", str(document), "--prune", "--dry-run", home=home))
    assert "Dry run, nothing applied" in out
    assert "2 unchanged" in out

    exported = ok(taskhub("export", NAP, FAILING, home=home))
    (tmp_path / "exported.yaml").write_text(exported)
    out = ok(taskhub("apply", "-f", str(tmp_path / "exported.yaml"), home=home))
    assert "0 to create, 0 to update, 0 to delete, 2 unchanged" in out

    listed = json.loads(ok(taskhub("configs", "--search", SUFFIX, "--output", "json", home=home)))
    assert {c["name"]: c["schedule_status"] for c in listed} == {NAP: "active", FAILING: "inactive"}
    table = ok(taskhub("configs", "--search", SUFFIX, home=home))
    assert table.splitlines()[0].split() == ["NAME", "TYPE", "SCHEDULE", "STATUS", "NEXT", "RUN",
                                             "LAST", "RESULT"]  # fmt: skip
    assert "Every 10 minutes" in table

    out = ok(taskhub("run", NAP, "--wait", home=home))
    assert "succeeded" in out
    result = taskhub("run", FAILING, "--wait", "-p", "message=bad luck", home=home)
    assert "failed" in ok(result, code=1)
    assert "bad luck" in result.stdout
    # The states it passed through go to stderr (which ones a poll sees depends on timing).
    assert result.stderr.rstrip().endswith(": finished")

    runs = json.loads(ok(taskhub("runs", FAILING, "--failed", "-o", "json", home=home)))
    assert [run["is_success"] for run in runs] == [False]
    assert "paused (db maintenance)" in ok(taskhub("pause", NAP, "--note", "db maintenance",
                                                   home=home))  # fmt: skip
    too_long = taskhub("stop", NAP, "--note", "x" * 501, home=home)
    assert too_long.returncode == 2
    assert "note" in too_long.stderr
    assert "active" in ok(taskhub("resume", NAP, home=home))
    upcoming = ok(taskhub("next", NAP, "-n", "3", home=home)).strip().splitlines()
    assert upcoming[0].split()[:2] == ["LOCAL", "(UTC)"]
    assert len(upcoming) == 4  # the header and three runs
    preview = json.loads(ok(taskhub("next", NAP, "-n", "2", "-o", "json", home=home)))
    assert preview["active"] is True
    assert len(preview["runs"]) == 2
    assert "inactive" in ok(taskhub("stop", NAP, home=home))
    shown = ok(taskhub("show", NAP, home=home))
    assert "status" in shown
    assert "inactive" in shown
    assert "database" in ok(taskhub("status", home=home))


async def test_errors_are_messages_with_exit_2(api: ApiServer, token: str, home: Path,
                                               tmp_path: Path) -> None:  # fmt: skip
    env = {"TASKHUB_URL": api.base_url, "TASKHUB_TOKEN": token}
    broken = tmp_path / "broken.yaml"
    broken.write_text("configs:\n  - name: x\n    parameters: {seconds: 1\n")
    result = taskhub("apply", "-f", str(broken), home=tmp_path, **env)
    assert result.returncode == 2
    assert f"{broken}:4:" in result.stderr

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(DOCUMENT.replace("minutes: 5", "minutes: -5"))
    result = taskhub("apply", "-f", str(invalid), home=tmp_path, **env)
    assert result.returncode == 2
    assert "configs[0].schedule_config.minutes" in result.stderr

    missing = taskhub("show", f"no such config {SUFFIX}", home=tmp_path, **env)
    assert missing.returncode == 2
    assert "No config named" in missing.stderr
    usage = taskhub("run", home=tmp_path, **env)
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr
    bad_token = taskhub("status", home=tmp_path, TASKHUB_URL=api.base_url, TASKHUB_TOKEN="thk_x")
    assert bad_token.returncode == 2
    assert "taskhub login" in bad_token.stderr


async def test_login_with_username_and_password(api: ApiServer, tmp_path: Path) -> None:
    password = f"{os.environ['FIRST_SUPERUSER']}\n{os.environ['FIRST_SUPERUSER_PASSWORD']}\n"
    result = taskhub("login", "--url", api.base_url, home=tmp_path, stdin=password)
    assert result.returncode == 0, result.stderr
    stored = json.loads((tmp_path / ".config" / "taskhub" / "credentials").read_text())
    assert stored["token"].startswith("thk_")
    assert ok(taskhub("status", home=tmp_path))


async def test_the_example_document_plans_cleanly(api: ApiServer, token: str,
                                                  tmp_path: Path) -> None:  # fmt: skip
    env = {"TASKHUB_URL": api.base_url, "TASKHUB_TOKEN": token}
    out = ok(taskhub("apply", "-f", "examples/schedules.yaml", "--dry-run", home=tmp_path, **env))
    assert "Dry run, nothing applied" in out
