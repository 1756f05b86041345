"""Autograde submitted exercises: ``python -m sslkit.grade SUBMISSIONS --out grades.csv``.

For every ``*.ipynb`` under ``SUBMISSIONS`` (flat or in sub-folders; one notebook per learner):

1. the learner id is ``metadata.sslkit.learner`` if present, else the file stem (when two
   submissions share an id, their relative paths are used instead and flagged
   ``duplicate_learner``); the exercise is ``metadata.sslkit.exercise`` (the file name does not
   matter), and the solution ``solutions/<exercise>.ipynb`` is read once, by the grader only;
2. the notebook is rebuilt from the solution (:func:`rebuild`): the learner's answer cells
   (matched by nbgrader ``grade_id``), the exercise's given cells, any code cell the learner
   added, and each graded test cell's public part;
3. the code is read before it runs (:mod:`sslkit._grade_static`);
4. two runs follow (:mod:`sslkit._grade_plan`), each a fresh process in a fresh temporary
   folder, under an OS sandbox where the machine has one (:mod:`sslkit._grade_sandbox`): the
   learner's notebook, for the flags and the feedback, and the grading run, where the graded
   tests (hidden ones included, passed to the process through a pipe, never a file) call the
   learner's definitions in a namespace that learner cells cannot reach;
5. each graded test cell earns its declared ``points`` if it runs without error in the grading
   run, else 0.

The CSV has the columns ``learner, exercise, cell, points, max_points, flags``, one row per
learner and graded cell; ``flags`` (joined by ``;``) describe the submission:

* ``unreadable``: not a notebook (one row, 0 points); ``unknown_exercise``: no or unknown
  ``metadata.sslkit.exercise`` (one row, 0 points);
* ``cells_deleted``: an answer or test cell's ``grade_id`` is missing (a missing answer runs as
  the exercise stub); ``tests_edited``: the learner's copy of a test cell differs from the
  exercise (the solution's tests ran anyway);
* ``unfinished``: a cell raised ``NotImplementedError`` (a stub left in place);
  ``failed_check``: a given cell of the exercise (a public self-check, a provided assert) raised
  ``CheckFailed`` or ``AssertionError``: the notebook runs, the answer is wrong; ``crashed``: any
  other error outside the test cells, or the process died (the run then goes on in a fresh
  process without the cell that killed it); ``timeout``: a run went past ``--timeout`` seconds
  (it is killed; graded cells not run earn 0);
* ``uses_reference``: an answer calls the library function it mirrors (the solution's answer
  cell lists them in ``metadata.sslkit.mirrors``), found in its code or while it ran;
  ``reads_solution``: the submission tried to open or list the solutions or another learner's
  submission (refused); ``tampered``: it patched what the tests rely on (an attribute of an
  imported module, builtins, IPython's hooks), reached for the interpreter's internals (frames,
  the garbage collector, ``ctypes``, dynamic code), wrote outside its folder or started a
  process. ``tampered`` costs every point; the solution's ``metadata.sslkit.reference_policy``
  says whether ``uses_reference`` and ``reads_solution`` cost the points (``"zero"``, the
  default) or only flag (``"flag"``).

``--feedback FOLDER`` writes one Markdown report per learner: the points of each graded cell
with its first error, each flag with what caused it, and the output of the self-checks that
failed (their hints name the usual mistakes). A summary table is printed; the exit status is 0
whenever grading completed, whatever the learners scored.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import re
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import _grade_plan as grading
from . import exercises as ex
from ._grade_sandbox import CellRun, hidden_folders, readonly_folders, run_job, sandbox
from ._validate import check_positive_int

COLUMNS = ("learner", "exercise", "cell", "points", "max_points", "flags")
FLAG_ORDER = ("unreadable", "unknown_exercise", "duplicate_learner", "cells_deleted",
              "tests_edited", "unfinished", "failed_check", "crashed", "timeout",
              "uses_reference", "reads_solution", "tampered")
FLAG_MEANING = {
    "duplicate_learner": "two submissions carry this learner id",
    "cells_deleted": "a graded cell was deleted (a missing answer runs as the stub)",
    "tests_edited": "a test cell was edited (the original tests ran)",
    "unfinished": "a stub was left in place",
    "failed_check": "a self-check failed: the notebook runs, an answer is wrong",
    "crashed": "a cell raised an error that is not a failed check, or the process died",
    "timeout": "a run went past the time limit",
    "uses_reference": "an answer calls the library's own version of what it should implement",
    "reads_solution": "the submission tried to read the solutions or other submissions",
    "tampered": "the submission patched or bypassed what the tests rely on",
}
_KIND = grading.KIND
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
    """The grade of one submission: one :class:`CellResult` per graded test cell, the flags and
    what raised each (``details``), and the learner's run (``executed``, for feedback)."""

    learner: str
    exercise: str
    path: Path
    cells: list[CellResult] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    details: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)  # learner's run: cell index → error
    executed: nbformat.NotebookNode | None = None

    def note(self, flag: str, detail: str) -> None:
        """Raise ``flag`` and record why (each reason once)."""
        self.flags.add(flag)
        reasons = self.details.setdefault(flag, [])
        if detail not in reasons:
            reasons.append(detail)

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
            add(cell, generated.source, "test")  # hidden tests never leave the grader
        else:
            add(cell, cell.source, "given")
        for extra in extras[key]:
            add(extra, extra.source, "added")
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(solution.metadata))
    return nb, graded, flags


# ---------------------------------------------------------------------------- grading
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


def _solution_of(exercise: str, solutions_dir) -> Path | None:
    """The solution file of a submission's exercise id, or ``None`` if the id is unsafe (a path)
    or names no solution."""
    path = Path(solutions_dir) / f"{exercise}.ipynb"
    ok = _SAFE_ID.match(exercise) and ".." not in exercise and path.is_file()
    return path if ok else None


def _error(run: CellRun | None) -> str | None:
    if run is None or run.error is None:
        return None
    return f"{run.error[0]}: {run.error[1]}".strip().rstrip(":")


def grade_submission(path: str | os.PathLike, solutions_dir: str | os.PathLike = "solutions",
                     *, timeout: int = 120, learner: str | None = None, threads: int = 1,
                     protected: tuple = (), _solutions: dict | None = None) -> Result:
    """Grade one submitted notebook; never raises for a bad submission (it is flagged).

    Two runs, each in a fresh process and folder (see the module docstring): the learner's
    notebook for the flags and the feedback, then the grading run for the points. ``timeout``
    bounds each run; ``protected`` adds folders (besides the solutions) the submission may not
    read; ``threads`` is the number of CPU threads each run may use.
    """
    check_positive_int("timeout", timeout)
    check_positive_int("threads", threads)
    path = Path(path)
    nb = _read_submission(path)
    learner = learner or learner_id(nb, path)
    if nb is None:
        return Result(learner, "", path, flags={"unreadable"})
    exercise = ex.exercise_id(nb) or ""
    solution_path = _solution_of(exercise, solutions_dir)
    if solution_path is None:
        return Result(learner, exercise, path, flags={"unknown_exercise"})
    cache = {} if _solutions is None else _solutions
    if exercise not in cache:
        try:
            cache[exercise] = ex.read_notebook(solution_path)
        except (OSError, ValueError) as err:
            raise ex.ExerciseError(f"{solution_path}: cannot read the solution: {err}") from None
    solution = cache[exercise]
    policy = solution.metadata.get("sslkit", {}).get("reference_policy", "zero")
    to_run, graded, flags = rebuild(nb, solution, name=solution_path.name)
    hidden = hidden_folders(solutions_dir, *protected)
    plan = grading.plan(to_run, solution, graded, hidden)
    readonly = readonly_folders(Path(solutions_dir).resolve().parent, *protected)
    mine = run_job({**plan.learner_job, "readonly": readonly}, timeout=timeout, threads=threads)
    scored = run_job({**plan.grading_job, "readonly": readonly}, timeout=timeout,
                     threads=threads)
    result = Result(learner, exercise, path, flags=flags, executed=grading.executed(
        to_run, mine, scored, [i for i, _, _ in graded]))
    for flag, detail in plan.findings:
        result.note(flag, detail)
    for run in (mine, scored):
        for f in run.flags:
            result.note(f["flag"], f["detail"])
        if run.timed_out:
            result.note("timeout", f"a run went past {timeout} s: cells not run earn 0")
        if run.died_in:
            result.note("crashed", "the process died in cell(s) "
                        + ", ".join(map(str, run.died_in)))
    kinds = {i: c.metadata.get(_KIND) for i, c in enumerate(to_run.cells)}
    for i, r in sorted(mine.cells.items()):
        error = _error(r)
        if error is None:
            continue
        where = ex.grade_id(to_run.cells[i]) or f"cell {i}"
        result.errors[i] = error
        if r.error[0] == "NotImplementedError":
            result.note("unfinished", f"{where}: {r.error[1]}")
        elif kinds[i] == "test":
            continue
        elif kinds[i] == "given" and r.error[0] in _CHECK_ERRORS:
            result.note("failed_check", f"{where}: {error}")
        else:
            result.note("crashed", f"{where}: {error}")
    zero_all = "tampered" in result.flags or (policy == "zero"
                                              and "reads_solution" in result.flags)
    cheats = {gid for gid in plan.mirrors
              if any(d.startswith((f"{gid} calls", f"{gid}, line"))
                     for d in result.details.get("uses_reference", []))}
    for i, gid, points in graded:
        r = scored.cells.get(i)
        error = _error(r) if r is not None else (
            "not run: the grading run timed out" if scored.timed_out else "not run")
        if r is not None and r.error and r.error[0] == "NotImplementedError":
            result.note("unfinished", f"{gid}: {r.error[1]}")
        if error is None and zero_all:
            error = "0 points: the submission is flagged " + ", ".join(
                f for f in ("tampered", "reads_solution") if f in result.flags)
        elif error is None and policy == "zero" and plan.answer_of_test.get(gid) in cheats:
            error = f"0 points: {plan.answer_of_test[gid]} calls the library's own version"
        result.cells.append(CellResult(gid, 0.0 if error else points, points, error))
    return result


def find_submissions(folder: str | os.PathLike) -> list[Path]:
    """Every ``*.ipynb`` under ``folder`` (recursively), skipping ``.ipynb_checkpoints``."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and ".ipynb_checkpoints" not in p.parts)


def _safe_name(learner: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", learner)


def grade_folder(submissions: str | os.PathLike, solutions_dir: str | os.PathLike = "solutions",
                 *, timeout: int = 120, jobs: int = 1,
                 executed_dir: str | os.PathLike | None = None,
                 feedback_dir: str | os.PathLike | None = None, progress=None) -> list[Result]:
    """Grade every submission in a folder; one :class:`Result` per notebook, sorted by learner.

    ``jobs`` submissions are graded at a time (each run gets ``cpu_count // jobs`` threads).
    ``executed_dir`` receives each learner's run as ``<learner>.ipynb``, ``feedback_dir`` one
    Markdown report per learner (:func:`feedback`). The submissions folder and these folders
    are protected from every submission. ``progress`` is a stream for one line per submission.
    """
    check_positive_int("timeout", timeout)
    check_positive_int("jobs", jobs)
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ValueError(f"submissions={str(submissions)!r} is invalid: not a folder")
    if not Path(solutions_dir).is_dir():
        raise ValueError(f"solutions={str(solutions_dir)!r} is invalid: not a folder")
    paths = find_submissions(submissions)
    notebooks = [_read_submission(p) for p in paths]
    ids = [learner_id(nb, p) for nb, p in zip(notebooks, paths, strict=True)]
    counts = defaultdict(int)
    for learner in ids:
        counts[learner] += 1
    protected = tuple(str(p) for p in (submissions, executed_dir, feedback_dir) if p is not None)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    cache: dict = {}
    for nb in notebooks:  # read each solution once, before any thread starts
        exercise = ex.exercise_id(nb or {}) or ""
        solution = _solution_of(exercise, solutions_dir)
        if solution is not None and exercise not in cache:
            cache[exercise] = ex.read_notebook(solution)

    def one(item):
        path, learner = item
        duplicate = counts[learner] > 1
        if duplicate:
            learner = path.relative_to(submissions).with_suffix("").as_posix()
        if progress is not None:
            print(f"grading {learner} ({path}) ...", file=progress, flush=True)
        result = grade_submission(path, solutions_dir, timeout=timeout, learner=learner,
                                  threads=threads, protected=protected, _solutions=cache)
        if duplicate:
            result.note("duplicate_learner", f"also used by another submission than {path}")
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = sorted(pool.map(one, zip(paths, ids, strict=True)),
                         key=lambda r: (r.learner, str(r.path)))
    for result in results:
        name = _safe_name(result.learner)
        if executed_dir is not None and result.executed is not None:
            Path(executed_dir).mkdir(parents=True, exist_ok=True)
            nbformat.write(result.executed, Path(executed_dir) / f"{name}.ipynb")
        if feedback_dir is not None:
            Path(feedback_dir).mkdir(parents=True, exist_ok=True)
            (Path(feedback_dir) / f"{name}.md").write_text(feedback(result), encoding="utf-8")
    return results


def write_csv(results: list[Result], path: str | os.PathLike) -> None:
    """Write the grade table: columns ``learner, exercise, cell, points, max_points, flags``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerows(result.rows())


def _first_line(text: str, width: int = 160) -> str:
    return (text.strip().splitlines() or [""])[0][:width]


def feedback(result: Result) -> str:
    """A learner's report in Markdown: points per graded cell, flags and their causes, and the
    output of every self-check that failed in the learner's run."""
    lines = [f"# {result.exercise or 'unknown exercise'}: feedback for {result.learner}", "",
             f"**Points: {_fmt(result.total)} / {_fmt(result.max_total)}**", ""]
    if result.cells:
        lines += ["| graded cell | points | result |", "|---|---|---|"]
        for c in result.cells:
            verdict = "passed" if c.error is None else _first_line(c.error).replace("|", "\\|")
            lines.append(f"| `{c.cell}` | {_fmt(c.points)} / {_fmt(c.max_points)} | {verdict} |")
        lines.append("")
    for flag in result.flag_text().split(";") if result.flags else []:
        lines.append(f"- **{flag}**: {FLAG_MEANING.get(flag, flag)}.")
        lines += [f"  - {_first_line(d)}" for d in result.details.get(flag, [])[:10]]
    nb = result.executed
    failed = [i for i in sorted(result.errors) if nb is not None
              and nb.cells[i].metadata.get(_KIND) in ("given", "answer", "added")]
    if failed:
        lines += ["", "## What failed when your notebook ran", ""]
    for i in failed:
        cell = nb.cells[i]
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        lines += [f"### Cell {i} ({ex.grade_id(cell) or cell.metadata.get(_KIND)})", "",
                  "```", *(printed.strip().splitlines()[-40:]),
                  result.errors[i], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def format_summary(results: list[Result]) -> str:
    """Plain-text table: learner, exercise, total/max, flags, then each failed cell's error."""
    width = max([7, *(len(r.learner) for r in results)])
    lines = [f"{'learner':<{width}}  {'exercise':<24} {'points':>9}  flags", "-" * (width + 50)]
    for r in results:
        score = f"{_fmt(r.total)}/{_fmt(r.max_total)}"
        lines.append(f"{r.learner:<{width}}  {r.exercise or '-':<24} {score:>9}  "
                     f"{r.flag_text().replace(';', ', ')}")
        notes = [(flag, d) for flag in r.flag_text().split(";") if r.flags
                 for d in r.details.get(flag, [])[:3]]
        notes += [(c.cell, c.error) for c in r.cells if c.error]
        for where, error in notes:
            lines.append(f"{'':<{width}}    {where}: {_first_line(error, 100)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring. Exit 0 when grading completed."""
    parser = argparse.ArgumentParser(prog="python -m sslkit.grade",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("submissions", help="folder of submitted notebooks (searched recursively)")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--solutions", default="solutions", help="default: solutions/")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds allowed per run of a notebook (default 120)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="submissions graded at a time (default 1)")
    parser.add_argument("--feedback", default=None,
                        help="folder for one Markdown feedback report per learner")
    parser.add_argument("--executed", default=None,
                        help="folder for each learner's executed notebook")
    args = parser.parse_args(argv)
    try:
        results = grade_folder(args.submissions, args.solutions, timeout=args.timeout,
                               jobs=args.jobs, executed_dir=args.executed,
                               feedback_dir=args.feedback, progress=sys.stdout)
    except ValueError as err:
        parser.error(str(err))
    write_csv(results, args.out)
    print()
    print(format_summary(results))
    print(f"\nsandbox: {sandbox()}; wrote {args.out} ({len(results)} submission(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
