"""How one submission is graded: the two runs built from the rebuilt notebook.

:func:`plan` turns the notebook that :func:`sslkit.grade.rebuild` made (each cell tagged
``answer``, ``test``, ``given`` or ``added`` in its metadata under :data:`KIND`) into two jobs
for :func:`sslkit._grade_sandbox.run_job`:

* the **learner's run**: the notebook as the learner wrote it, up to its last graded code cell,
  test cells holding only their public part (the hidden tests never leave the grader). Its
  errors give the flags (``unfinished``, ``failed_check``, ``crashed``) and the feedback;
* the **grading run**: the exercise's given cells before the last test (the data and fixtures,
  built with the solution's own answers, skipping cells that only call a public self-check),
  then the learner's answer and added cells reduced to their definitions
  (:func:`sslkit._grade_static.definitions`) in a namespace of their own, of which only the names
  the solution's answers define are handed to the tests, then the graded tests from the
  solution. Its errors give the points.

It also reads the learner's code before anything runs (:mod:`sslkit._grade_static`): patches
and escapes (``tampered``) and calls of the library functions an answer mirrors
(``uses_reference``), and maps each graded test to the answer it grades.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

import nbformat

from . import _grade_static as static
from . import exercises as ex
from ._grade_sandbox import JobResult

KIND = "sslkit_grade_kind"  # the metadata key of a rebuilt cell's kind (set by the grader)


def code_cells(nb, kinds=None) -> list[int]:
    """Indices of the non-empty code cells of a rebuilt notebook (of the given kinds)."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
            and (kinds is None or c.metadata.get(KIND) in kinds)]


def _is_check_call(source: str) -> bool:
    """A cell that only calls a public self-check (``checks.x(fn)``): not needed by the tests."""
    tree = static.parse(source)
    return bool(tree and len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
                and isinstance(tree.body[0].value, ast.Call)
                and (static.dotted(tree.body[0].value.func) or [""])[0] == "checks")


@dataclass
class Plan:
    """The learner's run and the grading run of one submission, built from the rebuilt notebook:
    the jobs for :func:`sslkit._grade_sandbox.run_job` and what the grader needs to read them."""

    learner_job: dict
    grading_job: dict
    answer_of_test: dict[str, str]           # test grade_id -> the answer it grades
    mirrors: dict[str, list[str]]            # answer grade_id -> mirrored qualified names
    findings: list[tuple[str, str]]          # (flag, detail) found in the code before any run


def plan(nb, solution, graded, protected) -> Plan:
    """Both runs of a rebuilt notebook ``nb`` (graded: ``(index, grade_id, points)`` of its test
    cells), against ``solution``; ``protected`` are the folders hidden from the submission."""
    gid_of = {i: ex.grade_id(c) for i, c in enumerate(nb.cells)}
    kind = {i: c.metadata.get(KIND) for i, c in enumerate(nb.cells)}
    solved = {ex.grade_id(c): c.source for c in solution.cells if ex.is_answer_cell(c)
              and c.cell_type == "code"}
    mirrors = {ex.grade_id(c): list(c.metadata.get("sslkit", {}).get("mirrors", []))
               for c in solution.cells if ex.is_answer_cell(c)}
    mirror_list = [[q, gid_of[i], f"<learner-{i}>"] for i in code_cells(nb, {"answer"})
                   for q in mirrors.get(gid_of[i], [])]
    code = code_cells(nb)
    last = max([i for i in code if kind[i] in ("answer", "test")], default=-1)
    as_kind = {"answer": "learner", "added": "learner", "given": "given", "test": "given"}
    learner_cells = [{"index": i, "source": nb.cells[i].source, "kind": as_kind[kind[i]]}
                     for i in code if i <= last]
    # the grading run: fixtures (with the solution's own answers), the learner's definitions in
    # a namespace of their own, then the graded tests taken from the solution
    tests = {i: source for i, _, _ in graded for source in [_solution_test(solution, gid_of[i])]}
    last_test = max(tests, default=-1)
    fixtures = [{"index": i, "kind": "given", "source": solved[gid_of[i]]
                 if kind[i] == "answer" else nb.cells[i].source}
                for i in code if i < last_test and (kind[i] == "answer" and gid_of[i] in solved
                                                     or kind[i] == "given")
                and not (kind[i] == "given" and _is_check_call(nb.cells[i].source))]
    forget = sorted(set().union(*(static.defined_names(s) for s in solved.values())))
    definitions = [{"index": i, "kind": "learner", "into": "learner", "export": forget,
                    "source": static.definitions(nb.cells[i].source)[0]}
                   for i in code if kind[i] in ("answer", "added")]
    grading_cells = [*fixtures, *definitions,
                     *({"index": i, "kind": "test", "source": s} for i, s in tests.items())]
    common = {"mirrors": mirror_list, "protected": protected}
    # what the code says before it runs: patches, escapes, and calls of the mirrored functions
    names: dict[str, str] = {}
    trees = {i: static.parse(nb.cells[i].source) for i in code}
    for i in code:
        if trees[i] is not None:
            static.aliases(trees[i], names)
    findings = []
    targets_of = {gid: _targets(qs) for gid, qs in mirrors.items()}
    for i in code:
        if kind[i] not in ("answer", "added") or trees[i] is None:
            continue
        where = gid_of[i] or f"an added cell (cell {i})"
        findings += [("tampered", f"{where}, line {line}: {why}")
                     for line, why in static.tampering(trees[i], names)]
        if kind[i] == "answer":
            findings += [("uses_reference", f"{gid_of[i]}, line {line}: calls {q}")
                         for line, q in static.references(trees[i], names,
                                                          targets_of.get(gid_of[i], {}))]
    answer_of_test, current = {}, None
    for c in solution.cells:
        if ex.is_answer_cell(c) and c.cell_type == "code":
            current = ex.grade_id(c)
        elif ex.is_test_cell(c):
            answer_of_test[ex.grade_id(c)] = current
    return Plan({**common, "cells": learner_cells},
                 {**common, "cells": grading_cells, "forget": forget},
                 answer_of_test, mirrors, findings)


def _solution_test(solution, gid: str) -> str:
    return next(c.source for c in solution.cells if ex.grade_id(c) == gid)


def _targets(qualnames: list[str]) -> dict[int, str]:
    """``id(object)`` → qualified name of the library functions an answer mirrors."""
    out = {}
    for q in qualnames:
        obj = static.resolve(q.split("."))
        if obj is not None:
            out[id(obj)] = q
    return out


def executed(nb, run: JobResult, scored: JobResult, tests: list[int]):
    """The learner's notebook with the printed output and errors of the learner's run, except
    in the graded test cells, which show how the grading run went (an error, or nothing)."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        r = scored.cells.get(i) if i in tests else run.cells.get(i)
        if cell.cell_type != "code" or r is None:
            continue
        for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
            if text and i not in tests:  # the hidden tests' own prints stay with the grader
                cell.outputs.append(nbformat.v4.new_output("stream", name=name, text=text))
        if r.error:
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename=r.error[0], evalue=r.error[1],
                traceback=[] if i in tests else r.error[2].splitlines()))
    return out
