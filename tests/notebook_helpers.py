"""Helpers shared by the exercise test files: an :class:`Exercise` (its notebooks, answers,
runs and grading), the expected messages of a check (:func:`passed`, :func:`failed_at`), and
the lower-level pieces (find a graded cell, define an answer, run a notebook, grade a folder)."""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import io
import re
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from sslkit import exercises, grade

ROOT = Path(__file__).resolve().parents[1]


def by_id(nb, gid):
    """The cell of ``nb`` whose nbgrader ``grade_id`` is ``gid``."""
    return next(c for c in nb.cells if exercises.grade_id(c) == gid)


def exec_answer(source: str, name: str, namespace: dict):
    """``exec`` an answer cell's source in a copy of ``namespace``; return the function ``name``."""
    namespace = dict(namespace)
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace[name]


def check_stored_executed(solution, name: str, points: dict) -> list:
    """Assert that the solution at ``solution`` is stored executed top to bottom without an
    error, tagged as exercise ``name``, with graded cells worth ``points`` (grade id → points);
    return its code cells."""
    nb = nbformat.read(solution, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert nb.metadata["sslkit"]["exercise"] == name
    assert {exercises.grade_id(c): exercises.nbgrader_meta(c).get("points") for c in nb.cells
            if exercises.nbgrader_meta(c).get("grade")} == points
    return code


def execute(nb, cwd):
    """Run a notebook in a fresh kernel; return it and ``{cell index: (ename, evalue)}``."""
    nb = copy.deepcopy(nb)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb, {i: (o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
                for o in c.outputs if o.output_type == "error"}


def text_of(cell) -> str:
    """The printed text of a code cell's outputs."""
    return "".join(o.get("text", "") for o in cell.outputs)


def run_grader(submissions, solutions, root, timeout: int):
    """One ``python -m sslkit.grade`` run over ``submissions``, two at a time (CSV to
    ``root/grades.csv``, the learners' runs to ``root/executed``, feedback to ``root/feedback``);
    return ``(status, csv rows, printed summary)``."""
    out, printed = root / "grades.csv", io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = grade.main([str(submissions), "--out", str(out), "--solutions", str(solutions),
                             "--timeout", str(timeout), "--executed", str(root / "executed"),
                             "--feedback", str(root / "feedback"), "--jobs", "2"])
    with out.open(newline="") as f:
        return status, list(csv.reader(f)), printed.getvalue()


# ---------------------------------------------------------------------------- a check's messages
def case_count(check: Callable) -> int:
    """How many cases ``check`` runs, as its docstring states it (``Cases (N)``): the count the
    tests expect, independent of what the check prints."""
    found = re.findall(r"Cases \((\d+)\)", check.__doc__ or "")
    assert len(found) == 1, f"{check.__name__}'s docstring should say 'Cases (N)' once"
    return int(found[0])


def passed(check: Callable) -> str:
    """The last line ``check`` prints when every case passes."""
    return f"{check.__name__}: {case_count(check)} public checks passed."


def failed_at(check: Callable, i: int, case: str) -> str:
    """How the message of ``check`` starts when its ``i``-th case, whose name starts with
    ``case``, fails."""
    return f"{check.__name__}: check {i}/{case_count(check)} '{case}"


def assert_passed(check: Callable, printed: str) -> None:
    """Assert that ``printed`` is one ``✓`` line per documented case, then :func:`passed`."""
    lines = printed.splitlines()
    assert lines[-1] == passed(check), (lines[-1], passed(check))
    assert len(lines) == case_count(check) + 1, lines
    assert all(line.startswith("  ✓ ") for line in lines[:-1]), lines


# ---------------------------------------------------------------------------- one exercise
class Exercise:
    """The exercise ``name`` (``"03_contrastive_simclr"``): its solution and generated exercise
    notebooks, its answers, and the answers' sources turned into functions.

    ``namespace`` holds what the notebook imported before its answer cells (``torch``, ``F``…):
    :meth:`define` runs an answer's source in a copy of it.
    """

    def __init__(self, name: str, namespace: dict):
        self.name = name
        self.solution = ROOT / "solutions" / f"{name}.ipynb"
        self.exercise = ROOT / "exercises" / f"{name}.ipynb"
        self.namespace = namespace

    @functools.cached_property
    def answers(self) -> dict[str, str]:
        """The solution's answer cells: grade id → source."""
        nb = exercises.read_notebook(self.solution)
        return {exercises.grade_id(c): c.source for c in nb.cells
                if exercises.nbgrader_meta(c).get("solution")}

    def answer(self, gid: str) -> str:
        """The source of the solution's answer cell ``gid``."""
        return self.answers[gid]

    def define(self, source, name: str, *, context: str = ""):
        """The function ``name`` of an answer: ``source`` itself if it is callable, else the
        source of an answer (or the grade id of one of the solution's answer cells) ``exec``-ed
        in a copy of the namespace, after ``context`` (the sources of answers it calls)."""
        if callable(source):
            return source
        namespace = dict(self.namespace)
        exec(compile(context, "<context>", "exec"), namespace)
        return exec_answer(self.answers.get(source, source), name, namespace)

    def check_stored_executed(self, points: dict) -> list:
        """:func:`check_stored_executed` for this exercise's solution; return its code cells."""
        return check_stored_executed(self.solution, self.name, points)

    def run_unsolved(self, cwd) -> tuple:
        """Execute the generated exercise unsolved; assert that every error is a
        ``NotImplementedError`` and that every graded cell is among them. Return the notebook,
        ``{cell index: (ename, evalue)}`` and the ``evalue`` of each public check cell
        (``checks.…``), in order."""
        nb = nbformat.read(self.exercise, as_version=4)
        _, errors = execute(nb, cwd)
        assert {name for name, _ in errors.values()} == {"NotImplementedError"}, errors
        graded = {i for i, c in enumerate(nb.cells) if exercises.is_test_cell(c)}
        assert graded <= set(errors), errors
        checked = [errors[i][1] for i, c in enumerate(nb.cells) if c.source.startswith("checks.")]
        return nb, errors, checked

    def run_solution(self, cwd) -> tuple:
        """Execute the solution; assert that no cell fails. Return the executed notebook and the
        printed text of all its code cells."""
        nb, errors = execute(exercises.read_notebook(self.solution), cwd)
        assert errors == {}, errors
        return nb, "".join(text_of(c) for c in nb.cells if c.cell_type == "code")

    def grade(self, root, submissions: dict[str, dict[str, str | None]], *,
              solutions=None) -> tuple:
        """Grade one copy of the generated exercise per learner, its cells filled from
        ``submissions`` (learner → {grade id: source}; ``None``: the solution's answer), with
        ``solutions`` (default: the course's). Return ``(status, csv rows, printed, root)``."""
        exercise = nbformat.read(self.exercise, as_version=4)
        (root / "submitted").mkdir()
        for learner, cells in submissions.items():
            nb = copy.deepcopy(exercise)
            for gid, source in cells.items():
                by_id(nb, gid).source = self.answer(gid) if source is None else source
            nbformat.write(nb, root / "submitted" / f"{learner}.ipynb")
        solutions = self.solution.parent if solutions is None else solutions
        return (*run_grader(root / "submitted", solutions, root, timeout=600), root)


def graded_errors(root, learner: str, gid: str, check: str) -> tuple[str, list[str]]:
    """In the grader's executed copy of ``learner``'s notebook (under ``root``): the one error
    of the graded cell ``gid`` as ``"<ename>: <evalue>"``, and the names of the errors of the
    public check cell ``checks.<check>(…)``."""
    executed = nbformat.read(root / "executed" / f"{learner}.ipynb", as_version=4)
    [err] = [o for o in by_id(executed, gid).outputs if o.output_type == "error"]
    cell = next(c for c in executed.cells if c.source.startswith(f"checks.{check}("))
    return f"{err.ename}: {err.evalue}", [o.ename for o in cell.outputs
                                          if o.output_type == "error"]


def expected_grades(name: str, learners, points: dict[str, int], lost: dict[str, tuple],
                    crashed: tuple[str, ...] = ()) -> list[list[str]]:
    """The rows ``sslkit.grade`` should write (header excluded) for ``learners``, in sorted
    order, each over the graded cells of ``points`` (cell → points). A learner whose name starts
    with a prefix in ``lost`` (prefix → cells) scores 0 on those cells and is flagged
    ``failed_check`` (its wrong answer fails its public check cell), plus ``crashed`` if named
    in ``crashed``; the learner ``unsolved`` is flagged ``unfinished``."""
    rows = []
    for learner in sorted(learners):
        cells = next((c for prefix, c in lost.items() if learner.startswith(prefix)), ())
        flags = "failed_check" if cells else ""
        flags += ";crashed" if learner in crashed else ""
        flags = "unfinished" if learner == "unsolved" else flags
        for cell, pts in points.items():
            rows.append([learner, name, cell, "0" if cell in cells else str(pts), str(pts),
                         flags])
    return rows

