"""Task types: one module each in this package; `load_all` imports them all."""

import importlib
import pkgutil


def load_all() -> None:
    """Import every module of this package, so adding a type is adding a module."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
