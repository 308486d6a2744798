"""The dependency lock: `requirements/*.txt`, compiled from `pyproject.toml` by pip-tools.

Each lock file starts with a digest of the requirements it was compiled from, so a test can
tell offline, in milliseconds, that `pyproject.toml` changed since (tests/unit/test_lock.py).

    python -m scripts.lock            # compile what changed, keeping the other pins
    python -m scripts.lock --upgrade  # move every pin to the newest release allowed
"""

import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK_DIR = ROOT / "requirements"
# name -> extras compiled into it. bench is the superset: it is compiled first and the
# others start from its pins, so one package has one version in every file.
LOCKS: dict[str, tuple[str, ...]] = {
    "bench": ("dev", "bench"),
    "dev": ("dev",),
    "main": (),
}
DIGEST_PREFIX = "# pyproject-sha256: "


def lock_path(name: str) -> Path:
    return LOCK_DIR / f"{name}.txt"


def requirements(extras: tuple[str, ...], pyproject: Path = PYPROJECT) -> list[str]:
    """The requirement strings of the project and the given extras, as written."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(req for extra in extras for req in optional[extra])]


def digest(reqs: list[str]) -> str:
    # Spaces dropped and sorted: reordering or reformatting pyproject.toml is no change.
    lines = sorted(req.replace(" ", "").lower() for req in reqs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def recorded_digest(path: Path) -> str | None:
    first = path.read_text().splitlines()[:1]
    if first and first[0].startswith(DIGEST_PREFIX):
        return first[0].removeprefix(DIGEST_PREFIX).strip()
    return None


def compile_lock(name: str, *, upgrade: bool) -> None:
    extras = LOCKS[name]
    path = lock_path(name)
    superset = lock_path("bench")
    if name != "bench":
        # pip-compile keeps the pins it finds in its output file: start from the superset's.
        shutil.copyfile(superset, path)
    command = [
        str(Path(sys.executable).with_name("pip-compile")),
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",  # pin pip and setuptools too: hash-checking mode needs every pin
        "--strip-extras",
        "--no-emit-index-url",  # the index is the machine's pip configuration, not the lock's
        "--no-emit-find-links",
        "--output-file",
        str(path.relative_to(ROOT)),
        *(f"--extra={extra}" for extra in extras),
        *(["--upgrade"] if upgrade and name == "bench" else []),
        "pyproject.toml",
    ]
    subprocess.run(command, cwd=ROOT, check=True)  # noqa: S603
    text = path.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith(DIGEST_PREFIX))
    path.write_text(f"{DIGEST_PREFIX}{digest(requirements(extras))}\n{body}\n")


def main(argv: list[str]) -> None:
    upgrade = "--upgrade" in argv
    LOCK_DIR.mkdir(exist_ok=True)
    for name in LOCKS:
        print(f"locking requirements/{name}.txt", flush=True)
        compile_lock(name, upgrade=upgrade)


if __name__ == "__main__":
    main(sys.argv[1:])
