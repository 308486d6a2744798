"""The example package's own tests (examples/custom_tasks), in a process of their own: its
type is registered there, never in this test session's registry."""

import os
import subprocess
import sys

from tests.support.processes import ROOT

EXAMPLE = ROOT / "examples" / "custom_tasks"


def test_the_example_package_passes_its_own_tests() -> None:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE, env={**os.environ, "PYTHONPATH": path},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
