"""The dependency lock (requirements/*.txt) agrees with pyproject.toml; `make lock` fixes it."""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import lock

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")
STALE = "pyproject.toml and {lock} disagree: run `make lock`"


def pins(path: Path) -> dict[str, str]:
    found = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        match = PIN.match(line)
        if match:
            assert lines[number + 1].lstrip().startswith("--hash=sha256:"), f"no hash: {line}"
            found[canonicalize_name(match[1])] = match[2]
    return found


@pytest.mark.parametrize("name", sorted(lock.LOCKS))
def test_the_lock_was_compiled_from_this_pyproject(name: str) -> None:
    path = lock.lock_path(name)
    expected = lock.digest(lock.requirements(lock.LOCKS[name]))
    assert lock.recorded_digest(path) == expected, STALE.format(lock=path.name)


@pytest.mark.parametrize("name", sorted(lock.LOCKS))
def test_every_requirement_is_pinned_within_its_range(name: str) -> None:
    locked = pins(lock.lock_path(name))
    for text in lock.requirements(lock.LOCKS[name]):
        requirement = Requirement(text)
        version = locked.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in {name}.txt: run `make lock`"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement} but {name}.txt pins {version}: run `make lock`"
        )


def test_a_package_has_one_version_in_every_lock() -> None:
    superset = pins(lock.lock_path("bench"))
    for name in lock.LOCKS:
        locked = pins(lock.lock_path(name))
        assert locked.items() <= superset.items(), f"{name}.txt strays from bench.txt"


def test_a_changed_pyproject_is_caught(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = lock.PYPROJECT.read_text()
    pyproject.write_text(text.replace('"click>=8.1"', '"click>=8.1", "rich>=13"'))
    changed = lock.digest(lock.requirements((), pyproject=pyproject))
    assert changed != lock.recorded_digest(lock.lock_path("main"))
    # Reformatting is no change.
    pyproject.write_text(text.replace('"click>=8.1"', '"click >= 8.1"'))
    same = lock.digest(lock.requirements((), pyproject=pyproject))
    assert same == lock.recorded_digest(lock.lock_path("main"))
