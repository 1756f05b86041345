"""Helpers shared by the exercise test files: find a graded cell, run a notebook, read outputs."""

from __future__ import annotations

import copy

from nbclient import NotebookClient

from sslkit import exercises


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
