"""The two installs (pip + constraints, conda) name the same packages at the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version.strip()
    return pins


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            name, _, version = re.match(r"([A-Za-z0-9_.-]+)(=*)(\S*)", item).groups()
            found[_name(name)] = version
    found.pop("python"), found.pop("pip")
    return found


def _pyproject() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return {_name(r) for r in reqs}


def test_environment_yml_and_pyproject_name_the_same_packages():
    assert set(_environment()) == _pyproject()


def test_environment_yml_versions_are_the_tested_pins():
    pins = _pins()
    env = _environment()
    assert {n: v for n, v in env.items()} == {n: pins[n] for n in env}


def test_every_direct_dependency_is_pinned():
    assert _pyproject() <= set(_pins())


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
