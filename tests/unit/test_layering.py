"""The worker and scheduler processes load no HTTP framework.

taskiq-dependencies imports `fastapi.params` by itself when FastAPI is installed (for its
FastAPI integration), so the processes are started here with fastapi and starlette made
unimportable: any import of them by Taskhub's own code then fails the start-up.
"""

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
for name in ("fastapi", "starlette"):
    sys.modules[name] = None  # `import fastapi` now raises ImportError
import {module}
loaded = [n for n, m in sys.modules.items() if m is not None and n.startswith(
    ("fastapi", "starlette", "backend.api", "backend.main"))]
print(json.dumps({{"entry": type({module}.{entry}).__name__, "loaded": loaded}}))
"""


@pytest.mark.parametrize(
    ("module", "entry", "kind"),
    [
        ("backend.scheduler", "scheduler", "TaskhubScheduler"),
        ("backend.worker", "broker", "TaskhubBroker"),
    ],
)
def test_a_process_entry_point_imports_no_http_framework(
    module: str, entry: str, kind: str
) -> None:
    probe = PROBE.format(module=module, entry=entry)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"entry": kind, "loaded": []}
