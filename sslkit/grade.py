"""Autograde submitted exercises: ``python -m sslkit.grade SUBMISSIONS --out grades.csv``.

For every ``*.ipynb`` under ``SUBMISSIONS`` (flat or in sub-folders; one notebook per learner):

1. the learner id is ``metadata.sslkit.learner`` if present, else the file stem (when two
   submissions share an id, their relative paths are used instead and flagged
   ``duplicate_learner``); the exercise is ``metadata.sslkit.exercise`` — the file name does not
   matter;
2. the notebook that runs is rebuilt from ``solutions/<exercise>.ipynb``: the learner's answer
   cells (matched by nbgrader ``grade_id``), every graded test cell taken from the *solution*
   (hidden tests included, so editing a test changes nothing), the solution's other cells
   (setup, instructions), and any code cell the learner added (kept after the cell it followed,
   e.g. a helper function);
3. it executes in a fresh kernel, in a temporary working folder, with ``SSLKIT_PROFILE=quick``
   unless set, under a per-notebook time limit; errors do not stop execution;
4. each graded test cell earns its declared ``points`` if it runs without error, else 0.

The CSV has the columns ``learner, exercise, cell, points, max_points, flags``, one row per
learner and graded cell; ``flags`` (joined by ``;``) describe the submission:

* ``unreadable``: not a notebook (one row, 0 points); ``unknown_exercise``: no or unknown
  ``metadata.sslkit.exercise`` (one row, 0 points);
* ``cells_deleted``: an answer or test cell's ``grade_id`` is missing (a missing answer runs as
  the exercise stub, so its tests fail); ``tests_edited``: the learner's copy of a test cell
  differs from the generated exercise (the solution's version ran anyway);
* ``unfinished``: some cell raised ``NotImplementedError`` (a stub left in place);
  ``failed_check``: a cell of the exercise itself (a public self-check, a provided assert)
  raised ``CheckFailed`` or ``AssertionError``: the notebook runs, the answer is wrong;
  ``crashed``: any other error outside the test cells (in an answer, in a cell the learner
  added, or an exception other than a failed check), or the kernel died (the notebook is then
  re-run in a fresh kernel without the cell that killed it, so later parts are still graded);
* ``timeout``: the notebook ran past ``--timeout`` seconds: the kernel is killed, cells not yet
  run earn 0.

A summary table (learner, exercise, total/max, flags, first failures) is printed; the exit
status is 0 whenever grading completed, whatever the learners scored.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from . import exercises as ex
from ._validate import check_positive_int

COLUMNS = ("learner", "exercise", "cell", "points", "max_points", "flags")
FLAG_ORDER = ("unreadable", "unknown_exercise", "duplicate_learner", "cells_deleted",
              "tests_edited", "unfinished", "failed_check", "crashed", "timeout")
# What each cell of the rebuilt notebook is, kept in its metadata under this key (always set by
# the grader, whatever metadata a learner's cell carried).
_KIND = "sslkit_grade_kind"
_CHECK_ERRORS = ("CheckFailed", "AssertionError")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass
class CellResult:
    """One graded test cell: its ``grade_id``, points earned and declared, and its error."""

    cell: str
    points: float
    max_points: float
    error: str | None = None


@dataclass
class Result:
    """The grade of one submission: one :class:`CellResult` per graded test cell, and flags."""

    learner: str
    exercise: str
    path: Path
    cells: list[CellResult] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    errors: dict[int, str] = field(default_factory=dict)  # executed cell index → error
    executed: nbformat.NotebookNode | None = None

    @property
    def total(self) -> float:
        """Points earned."""
        return sum(c.points for c in self.cells)

    @property
    def max_total(self) -> float:
        """Points available."""
        return sum(c.max_points for c in self.cells)

    def flag_text(self) -> str:
        """Flags in a fixed order, joined by ``;`` (empty when there are none)."""
        return ";".join(sorted(self.flags, key=lambda f: (
            FLAG_ORDER.index(f) if f in FLAG_ORDER else len(FLAG_ORDER), f)))

    def rows(self) -> list[dict]:
        """CSV rows: one per graded cell, or a single 0-point row when nothing could be graded."""
        cells = self.cells or [CellResult("", 0, 0)]
        return [{"learner": self.learner, "exercise": self.exercise, "cell": c.cell,
                 "points": _fmt(c.points), "max_points": _fmt(c.max_points),
                 "flags": self.flag_text()} for c in cells]


def _fmt(points: float) -> str:
    return str(int(points)) if float(points).is_integer() else f"{points:g}"


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


# ---------------------------------------------------------------------------- rebuilding
def rebuild(submission, solution, *, name: str = "solution"
            ) -> tuple[nbformat.NotebookNode, list[tuple[int, str, float]], set[str]]:
    """Build the notebook to execute from a learner's submission and the matching solution.

    Returns ``(notebook, graded, flags)`` where ``graded`` lists ``(cell index, grade_id,
    points)`` of the graded test cells in the returned notebook, and ``flags`` may hold
    ``cells_deleted`` and ``tests_edited``. Each cell's metadata says what it is
    (``"answer"``, ``"test"``, ``"given"`` by the exercise, or ``"added"`` by the learner), so
    that an error can be told apart as a failed check or a crash. Neither input is modified.
    """
    exercise = ex.generate_notebook(solution, name=name)  # same cells, in the same order
    by_gid = {ex.grade_id(c): c for c in submission.cells if ex.grade_id(c)}
    keys = []  # the key of each solution cell: its grade_id, else the generated cell id
    for cell, generated in zip(solution.cells, exercise.cells, strict=True):
        keys.append(("gid", ex.grade_id(cell)) if ex.grade_id(cell) else ("id", generated.id))
    known = set(keys)
    # a plain cell of the exercise is recognised by its id, or by its text if the id was lost
    by_text = {_normalise(g.source): k for g, k in zip(exercise.cells, keys, strict=True)
               if k[0] == "id" and g.cell_type == "code"}

    extras: dict[tuple | None, list] = defaultdict(list)  # cells the learner added
    anchor = None
    for cell in submission.cells:
        key = ("gid", ex.grade_id(cell)) if ex.grade_id(cell) else ("id", cell.get("id"))
        if key not in known and cell.cell_type == "code" and not ex.nbgrader_meta(cell):
            key = by_text.get(_normalise(cell.source), key)
        if key in known:
            anchor = key
        elif cell.cell_type == "code" and not ex.nbgrader_meta(cell) and cell.source.strip():
            extras[anchor].append(cell)

    flags: set[str] = set()
    cells, graded = [], []

    def add(cell, source, kind):
        new = copy.deepcopy(cell)
        new.source = source
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        new["id"] = f"graded-{len(cells)}"
        new.metadata[_KIND] = kind
        cells.append(new)

    for cell in extras[None]:
        add(cell, cell.source, "added")
    for cell, generated, key in zip(solution.cells, exercise.cells, keys, strict=True):
        gid = ex.grade_id(cell)
        if ex.is_answer_cell(cell):
            mine = by_gid.get(gid)
            if mine is None:
                flags.add("cells_deleted")
            add(cell, generated.source if mine is None else mine.source, "answer")
        elif ex.is_test_cell(cell):
            mine = by_gid.get(gid)
            if mine is None:
                flags.add("cells_deleted")
            elif _normalise(mine.source) != _normalise(generated.source):
                flags.add("tests_edited")
            graded.append((len(cells), gid, float(ex.nbgrader_meta(cell)["points"])))
            add(cell, cell.source, "test")
        else:
            add(cell, cell.source, "given")
        for extra in extras[key]:
            add(extra, extra.source, "added")
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(solution.metadata))
    return nb, graded, flags


# ---------------------------------------------------------------------------- execution
def _first_error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name, value = out.get("ename", "Error"), str(out.get("evalue", "")).strip()
            return f"{name}: {value}" if value else name
    return None


def execute(nb, *, timeout: int, cwd: str | os.PathLike, env: dict | None = None
            ) -> tuple[nbformat.NotebookNode, dict[int, str], set[str]]:
    """Run every code cell of ``nb`` in a fresh kernel; return ``(executed, errors, flags)``.

    ``errors`` maps a cell index to ``"Name: message"`` for each cell that raised (or could not
    run). ``timeout`` (seconds) bounds the whole notebook, not one cell: on expiry the kernel is
    killed, flag ``timeout``, and the remaining cells are reported as not run. If the kernel
    dies, flag ``crashed`` and run the notebook again in a fresh kernel without that cell.
    """
    check_positive_int("timeout", timeout)
    skip: set[int] = set()
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    while True:
        run = copy.deepcopy(nb)
        errors: dict[int, str] = {}
        flags: set[str] = {"crashed"} if skip else set()
        died_at = None
        client = NotebookClient(run, timeout=timeout, allow_errors=True, kernel_name="python3",
                                shutdown_kernel="immediate",
                                resources={"metadata": {"path": str(cwd)}})
        with client.setup_kernel(env=env):
            start = time.monotonic()
            for pos, i in enumerate(code_cells):
                if i in skip:
                    errors[i] = "DeadKernelError: the kernel died in this cell (skipped)"
                    continue
                remaining = timeout - (time.monotonic() - start)
                try:
                    if remaining <= 0:
                        raise CellTimeoutError("no time left")
                    client.timeout = max(1, math.ceil(remaining))
                    client.execute_cell(run.cells[i], i)
                except CellTimeoutError:
                    flags.add("timeout")
                    for j in code_cells[pos:]:
                        errors[j] = (f"TimeoutError: the notebook ran past {timeout} s"
                                     if j == i else "not run: the notebook timed out")
                    break
                except DeadKernelError:
                    died_at = i
                    break
                error = _first_error(run.cells[i])
                if error:
                    errors[i] = error
        if died_at is None or len(skip) >= len(code_cells):
            return run, errors, flags
        skip.add(died_at)


def _kernel_env() -> dict:
    env = dict(os.environ)
    env.setdefault("SSLKIT_PROFILE", "quick")
    env.setdefault("SSLKIT_PROGRESS", "0")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return env


def _read_submission(path: Path):
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # any unreadable file becomes a flagged row, never a stop
        return None
    return nb if isinstance(nb.get("cells"), list) else None


def learner_id(nb, path: Path) -> str:
    """``metadata.sslkit.learner`` if it is a non-empty string, else the file stem."""
    meta = nb.get("metadata", {}).get("sslkit", {}) if nb is not None else {}
    learner = meta.get("learner") if isinstance(meta, dict) else None
    return learner.strip() if isinstance(learner, str) and learner.strip() else path.stem


def grade_submission(path: str | os.PathLike, solutions_dir: str | os.PathLike = "solutions",
                     *, timeout: int = 120, learner: str | None = None,
                     _solutions: dict | None = None) -> Result:
    """Grade one submitted notebook; never raises for a bad submission (it is flagged)."""
    check_positive_int("timeout", timeout)
    path = Path(path)
    nb = _read_submission(path)
    learner = learner or learner_id(nb, path)
    if nb is None:
        return Result(learner, "", path, flags={"unreadable"})
    exercise = ex.exercise_id(nb) or ""
    solution_path = Path(solutions_dir) / f"{exercise}.ipynb"
    if not _SAFE_ID.match(exercise) or ".." in exercise or not solution_path.is_file():
        return Result(learner, exercise, path, flags={"unknown_exercise"})
    cache = {} if _solutions is None else _solutions
    if exercise not in cache:
        try:
            cache[exercise] = ex.read_notebook(solution_path)
        except (OSError, ValueError) as err:
            raise ex.ExerciseError(f"{solution_path}: cannot read the solution: {err}") from None
    solution = cache[exercise]
    to_run, graded, flags = rebuild(nb, solution, name=solution_path.name)
    with tempfile.TemporaryDirectory(prefix="sslkit-grade-") as cwd:
        executed, errors, run_flags = execute(to_run, timeout=timeout, cwd=cwd,
                                              env=_kernel_env())
    flags |= run_flags
    test_cells = {i for i, _, _ in graded}
    for i, error in errors.items():
        if error.startswith("NotImplementedError"):
            flags.add("unfinished")
        elif i in test_cells or error.startswith(("not run", "TimeoutError")):
            continue
        elif (to_run.cells[i].metadata.get(_KIND) == "given"
              and error.split(":", 1)[0] in _CHECK_ERRORS):
            flags.add("failed_check")
        else:
            flags.add("crashed")
    result = Result(learner, exercise, path, flags=flags, errors=errors, executed=executed)
    for i, gid, points in graded:
        error = errors.get(i)
        result.cells.append(CellResult(gid, 0.0 if error else points, points, error))
    return result


def find_submissions(folder: str | os.PathLike) -> list[Path]:
    """Every ``*.ipynb`` under ``folder`` (recursively), skipping ``.ipynb_checkpoints``."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and ".ipynb_checkpoints" not in p.parts)


def grade_folder(submissions: str | os.PathLike, solutions_dir: str | os.PathLike = "solutions",
                 *, timeout: int = 120, executed_dir: str | os.PathLike | None = None,
                 progress=None) -> list[Result]:
    """Grade every submission in a folder; one :class:`Result` per notebook, sorted by learner.

    ``executed_dir``, if given, receives each executed notebook as ``<learner>.ipynb`` (for
    feedback). ``progress`` is a stream for one line per submission (``None``: silent).
    """
    check_positive_int("timeout", timeout)
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ValueError(f"submissions={str(submissions)!r} is invalid: not a folder")
    if not Path(solutions_dir).is_dir():
        raise ValueError(f"solutions={str(solutions_dir)!r} is invalid: not a folder")
    paths = find_submissions(submissions)
    ids = [learner_id(_read_submission(p), p) for p in paths]
    counts = defaultdict(int)
    for learner in ids:
        counts[learner] += 1
    results, cache = [], {}
    for path, learner in zip(paths, ids, strict=True):
        duplicate = counts[learner] > 1
        if duplicate:
            learner = path.relative_to(submissions).with_suffix("").as_posix()
        if progress is not None:
            print(f"grading {learner} ({path}) ...", file=progress, flush=True)
        result = grade_submission(path, solutions_dir, timeout=timeout, learner=learner,
                                  _solutions=cache)
        if duplicate:
            result.flags.add("duplicate_learner")
        if executed_dir is not None and result.executed is not None:
            target = Path(executed_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', learner)}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(result.executed, target)
        results.append(result)
    return sorted(results, key=lambda r: (r.learner, str(r.path)))


def write_csv(results: list[Result], path: str | os.PathLike) -> None:
    """Write the grade table: columns ``learner, exercise, cell, points, max_points, flags``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerows(result.rows())


def format_summary(results: list[Result]) -> str:
    """Plain-text table: learner, exercise, total/max, flags, then each failed cell's error."""
    width = max([7, *(len(r.learner) for r in results)])
    lines = [f"{'learner':<{width}}  {'exercise':<24} {'points':>9}  flags", "-" * (width + 50)]
    for r in results:
        score = f"{_fmt(r.total)}/{_fmt(r.max_total)}"
        lines.append(f"{r.learner:<{width}}  {r.exercise or '-':<24} {score:>9}  "
                     f"{r.flag_text().replace(';', ', ')}")
        graded = {c.cell for c in r.cells}
        notes = []
        if r.executed is not None:
            for i, error in sorted(r.errors.items()):
                gid = ex.grade_id(r.executed.cells[i])
                if gid not in graded and not error.startswith("not run"):
                    notes.append((gid or f"cell {i}", error))
        notes += [(c.cell, c.error) for c in r.cells if c.error]
        for where, error in notes:
            lines.append(f"{'':<{width}}    {where}: {(error.splitlines() or [''])[0][:100]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring. Exit 0 when grading completed."""
    parser = argparse.ArgumentParser(prog="python -m sslkit.grade",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("submissions", help="folder of submitted notebooks (searched recursively)")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--solutions", default="solutions", help="default: solutions/")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds allowed per notebook (default 120)")
    parser.add_argument("--executed", default=None,
                        help="folder for the executed notebooks (optional, for feedback)")
    args = parser.parse_args(argv)
    try:
        results = grade_folder(args.submissions, args.solutions, timeout=args.timeout,
                               executed_dir=args.executed, progress=sys.stdout)
    except ValueError as err:
        parser.error(str(err))
    write_csv(results, args.out)
    print()
    print(format_summary(results))
    print(f"\nwrote {args.out} ({len(results)} submission(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
