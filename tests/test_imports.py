"""The shape of the package: every submodule is reachable after ``import sslkit``, imports go one
way (no cycle, function-level imports included), and no module is too long to read in one
sitting."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sslkit

PACKAGE = Path(sslkit.__file__).parent


def _modules() -> dict[str, Path]:
    """``{"sslkit.methods.moco": path, ...}`` for every ``.py`` file of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _unit(module: str) -> str:
    """The top-level unit a module belongs to: ``sslkit.methods.moco`` → ``methods``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sslkit"


def _imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """Every sslkit module ``module`` imports, at any depth of its code (functions included)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sslkit"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("sslkit"):
                continue
            for alias in node.names:  # `from . import losses` imports the module sslkit.losses
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def test_every_submodule_is_reachable_as_an_attribute_after_import_sslkit():
    code = ("import sslkit\n"
            "sslkit.pretext, sslkit.theory, sslkit.course\n"
            "missing = [n for n in sorted(sslkit._SUBMODULES) if getattr(sslkit, n) is None]\n"
            "print(missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
    public = {_unit(m) for m in _modules()} - {"sslkit"}
    assert {u for u in public if not u.startswith("_")} == sslkit._SUBMODULES


def test_imports_between_sslkit_modules_have_no_cycle():
    """Units are the top-level modules and subpackages; imports inside a unit don't count. A cycle
    hidden behind a function-level import is still a cycle."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        unit = _unit(name)
        targets = {_unit(t) for t in _imported_modules(name, path, set(modules))}
        graph.setdefault(unit, set()).update(targets - {unit, "sslkit"})

    state: dict[str, int] = {}   # 1: on the current path, 2: done
    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_cycle_detector_sees_function_level_imports(tmp_path):
    """The detector itself: a lazy import inside a function is found."""
    path = tmp_path / "fake.py"
    path.write_text("def f():\n    from .train import fit\n    from .. import views\n")
    found = _imported_modules("sslkit.evaluate.fake", path,
                              {"sslkit.evaluate.train", "sslkit.views"})
    assert found == {"sslkit.evaluate.train", "sslkit.views"}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_reads_in_one_sitting(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= 500, f"{name} has {lines} lines (at most 500: split it along its seams)"
