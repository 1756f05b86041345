"""Helpers shared by the exercise test files: find a graded cell, run a notebook, read outputs."""

from __future__ import annotations

import contextlib
import copy
import csv
import io

from nbclient import NotebookClient

from sslkit import exercises, grade


def by_id(nb, gid):
    """The cell of ``nb`` whose nbgrader ``grade_id`` is ``gid``."""
    return next(c for c in nb.cells if exercises.grade_id(c) == gid)


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
