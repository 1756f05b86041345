"""Every public function and class of the library documents itself (COURSE.md §10)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import sslkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(sslkit.__path__, "sslkit.")
                 if not m.name.rsplit(".", 1)[-1].startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_public_functions_and_classes_have_docstrings(name):
    module = importlib.import_module(name)
    assert module.__doc__ and module.__doc__.strip(), f"{name} has no module docstring"
    missing = []
    for attr, obj in vars(module).items():
        if attr.startswith("_") or getattr(obj, "__module__", None) != name:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if not (obj.__doc__ and obj.__doc__.strip()):
                missing.append(attr)
            if inspect.isclass(obj):
                missing += [f"{attr}.{m}" for m, f in vars(obj).items()
                            if inspect.isfunction(f) and not m.startswith("_")
                            and not (f.__doc__ and f.__doc__.strip())]
    assert not missing, f"{name}: no docstring on {missing}"
