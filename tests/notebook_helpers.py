"""Helpers shared by the exercise test files: find a graded cell, define an answer, run a
notebook, read outputs, check how a solution is stored, grade a folder."""

from __future__ import annotations

import contextlib
import copy
import csv
import io

import nbformat
from nbclient import NotebookClient

from sslkit import exercises, grade


def by_id(nb, gid):
    """The cell of ``nb`` whose nbgrader ``grade_id`` is ``gid``."""
    return next(c for c in nb.cells if exercises.grade_id(c) == gid)


def answer_source(solution, gid) -> str:
    """The source of the cell ``gid`` of the solution notebook at ``solution``."""
    return by_id(exercises.read_notebook(solution), gid).source


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
    assert nb.metadata["sslkit"] == {"exercise": name}
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
    """One ``python -m sslkit.grade`` run over ``submissions`` (CSV to ``root/grades.csv``,
    executed copies to ``root/executed``); return ``(status, csv rows, printed summary)``."""
    out, printed = root / "grades.csv", io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = grade.main([str(submissions), "--out", str(out), "--solutions", str(solutions),
                             "--timeout", str(timeout), "--executed", str(root / "executed")])
    with out.open(newline="") as f:
        return status, list(csv.reader(f)), printed.getvalue()
