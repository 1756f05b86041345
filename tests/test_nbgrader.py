"""The solutions go through nbgrader's own ``generate_assignment`` as they are, and nbgrader's
release agrees with ``exercises/`` in what matters: the same cells in the same order, every
solution region and hidden test gone, the same public tests, locks and points.

nbgrader is the ``nbgrader`` extra, which ``make test`` installs; without it the test is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sslkit import exercises

pytest.importorskip("nbgrader")
ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Every solution released by ``nbgrader generate_assignment`` as one assignment."""
    course = tmp_path_factory.mktemp("nbgrader_course")
    source = course / "source" / "sslkit"
    source.mkdir(parents=True)
    for path in SOLUTIONS:
        shutil.copy(path, source / path.name)
    bin_dir = Path(sys.executable).parent          # nbgrader runs alembic from the same env
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(course)}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "sslkit",
                           "--force", f"--CourseDirectory.root={course}",
                           f"--db=sqlite:///{course / 'gradebook.db'}"],
                          capture_output=True, text=True, env=env, cwd=course, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return course / "release" / "sslkit"


def _code(source: str) -> list[str]:
    """Source lines without blank lines and trailing spaces (nbgrader keeps blank lines a region
    leaves behind; our generator does not)."""
    return [line.rstrip() for line in source.splitlines() if line.strip()]


def _skeleton(stub: str) -> list[str]:
    """A stub without what differs by design: the raise (over several lines in ours) and
    comments; the signature and docstring remain."""
    return [line for line in _code(stub) if "NotImplementedError" not in line
            and not re.match(r"\s*#", line) and not re.fullmatch(r'\s*"[^"]*"', line)
            and line.strip() != ")"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_nbgrader_releases_what_the_exercise_generator_writes(released, path):
    theirs = nbformat.read(released / path.name, as_version=4)
    ours = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
    assert len(theirs.cells) == len(ours.cells)
    for i, (t, o) in enumerate(zip(theirs.cells, ours.cells, strict=True)):
        where = f"{path.name}, cell {i} ({exercises.grade_id(o) or 'given'})"
        assert t.cell_type == o.cell_type, where
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
            assert marker not in t.source and marker not in o.source, (where, marker)
        meta_t, meta_o = exercises.nbgrader_meta(t), exercises.nbgrader_meta(o)
        for key in ("grade_id", "grade", "solution", "locked", "points"):
            assert meta_t.get(key) == meta_o.get(key), (where, key)
        if exercises.is_test_cell(o):
            assert _code(t.source) == _code(o.source), where   # the same public tests
        elif exercises.is_answer_cell(o) and o.cell_type == "code":
            # a stub that raises in both; nbgrader's is one fixed line, ours says what to do
            assert "raise NotImplementedError" in t.source and "NotImplementedError" in o.source
            assert _skeleton(o.source) == _skeleton(t.source), where
        elif exercises.is_answer_cell(o):
            assert "YOUR ANSWER HERE" in t.source and "YOUR ANSWER HERE" in o.source, where
        else:
            assert t.source == o.source, where               # given cells are untouched
