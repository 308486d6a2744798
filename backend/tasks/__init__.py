"""Task types: one module each in this package, and those of other packages.

`load_all` imports them all: this package's modules, the modules named by the `taskhub.tasks`
entry points of installed distributions, and those named in TASK_MODULES. A team registers
its own types with `@task_type` in its own package, without editing Taskhub. A module that
fails to import raises TaskModuleError, which stops the process at start: a worker that
lacks some types is never half-started.
"""

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from functools import partial
from importlib.metadata import entry_points

from backend.tasks.context import RunContext
from backend.tasks.registry import task_type

__all__ = ["ENTRY_POINT_GROUP", "RunContext", "TaskModuleError", "load_all", "task_type"]

ENTRY_POINT_GROUP = "taskhub.tasks"


class TaskModuleError(RuntimeError):
    """A task module that could not be imported; the process must not start without it."""


def load_all(modules: Sequence[str] = ()) -> None:
    """Import the built-in task modules, the entry points' modules, then `modules`."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        _load(entry_point.value, entry_point.load, source=f"entry point {entry_point.name!r}")
    for name in modules:
        _load(name, partial(importlib.import_module, name), source="TASK_MODULES")


def _load(name: str, load: Callable[[], object], *, source: str) -> None:
    try:
        load()
    except Exception as exc:
        # The boundary to another package's code: whatever it raises, the process stops,
        # naming the module and the cause (the original traceback is chained).
        raise TaskModuleError(
            f"cannot import task module {name!r} (from {source}): {type(exc).__name__}: {exc}"
        ) from exc
