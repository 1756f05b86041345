"""Generate the learner's exercises from the solutions: ``python -m sslkit.exercises``.

One source, two versions. ``solutions/NN_topic.ipynb`` is the only file an author edits; it marks
answers with nbgrader's conventions, and ``exercises/NN_topic.ipynb`` is generated from it:

* a code region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines becomes a stub
  ``raise NotImplementedError("...")``, indented like the ``BEGIN`` line (so it stays valid
  Python inside a function body). The message is taken from a marker comment, the first line
  after ``BEGIN SOLUTION``: ``# TODO: compute the cosine similarities`` (the comment is kept in
  the stub; it may go on over comment lines whose text is indented by two or more spaces after
  ``#``, as in ``#       overflows``). Without one it says ``implement <function>()`` for the
  enclosing ``def``;
* a region between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed;
* in a markdown cell, a solution region (or a whole solution cell) becomes ``YOUR ANSWER HERE``;
* outputs, execution counts and execution timestamps are cleared; graded test cells are
  locked (``editable``/``deletable`` false), answer cells cannot be deleted;
* notebook metadata ``{"sslkit": {"exercise": "NN_topic"}}`` is kept, so that ``sslkit.grade``
  recognises a submission whatever its file name.

Cells carry nbgrader's own metadata, schema version 3 (what nbgrader 0.9 reads): an answer cell
``{"nbgrader": {"solution": true, "grade": false, "grade_id": "knn_solution", "locked": false,
"schema_version": 3, "task": false}}`` and a graded test cell ``{"nbgrader": {"grade": true,
"grade_id": "knn_tests", "points": 3, "solution": false, "locked": true, "schema_version": 3,
"task": false}}``; a cell without these keys is an error here, as it is for nbgrader's
``generate_assignment``. Generation keeps the cell count and order, so cell *i* of the exercise
is cell *i* of the solution.

Why not nbgrader's own preprocessors (``ClearSolutions``, ``ClearHiddenTests``, ``ClearOutput``)?
We tried: ``import nbgrader`` imports its Jupyter-server extensions, so the preprocessors do not
run standalone with nbconvert, and installing nbgrader pulls in jupyter_server, notebook,
SQLAlchemy and alembic. Its stub is also one fixed line. This module is a short nbformat script
that follows the same marker semantics; instructors can still run nbgrader on ``solutions/``.

Learner work is never destroyed. ``exercises/.generated.json`` records the sha256 of what was
last generated for each file; a file whose content differs from that (a learner or an author
edited it), or that exists without a record, is not overwritten: the command stops and names
the files, unless ``--force`` is given, in which case the edited copy is first saved as
``NN_topic.ipynb.bak-<timestamp>``. ``--check`` regenerates in memory and compares byte for byte
(``make test`` runs it): it exits 1 and lists drifted, missing and orphaned files.

Usage (from the repository root)::

    python -m sslkit.exercises            # make exercises
    python -m sslkit.exercises --check    # make exercises CHECK=1
    python -m sslkit.exercises --force    # make exercises FORCE=1
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ._validate import check_range

BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
TEXT_STUB = "YOUR ANSWER HERE"
HIDDEN_ONLY_NOTE = "# This cell runs hidden tests when your notebook is graded."
MANIFEST = ".generated.json"
LINE_LENGTH = 100  # ruff's line length: generated stubs must pass `make lint`

_TODO = re.compile(r"^\s*#\s*TODO\b:?\s*(.*?)\s*$")
_TODO_MORE = re.compile(r"^\s*#\s{2,}(\S.*?)\s*$")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)")
_GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_DROP_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
NBGRADER_SCHEMA = 3
_NBGRADER_KEYS = ("grade", "grade_id", "locked", "schema_version", "solution", "task")


class ExerciseError(ValueError):
    """A solution notebook breaks the authoring conventions; the message names file and cell."""


# ---------------------------------------------------------------------------- cell metadata
def nbgrader_meta(cell) -> dict:
    """Return the cell's ``metadata.nbgrader`` dict (empty if the cell has none)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    """Return the cell's nbgrader ``grade_id``, or ``None``."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_answer_cell(cell) -> bool:
    """True for an answer cell (``nbgrader.solution`` true): the learner writes in it."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test_cell(cell) -> bool:
    """True for an autograded test cell: ``nbgrader.grade`` true and ``solution`` false.

    Cells with both flags are nbgrader's manually graded answers; they are answer cells here.
    """
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def exercise_id(nb) -> str | None:
    """Return ``metadata.sslkit.exercise`` of a notebook, or ``None``."""
    meta = nb.get("metadata", {}).get("sslkit", {})
    value = meta.get("exercise") if isinstance(meta, dict) else None
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------------------- reading/writing
def read_notebook(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Read a notebook deterministically (nbformat 4).

    Cells of an nbformat-4.5 file that lack an ``id`` get ``cell-<index>`` instead of the random
    id nbformat would invent, so that generating twice gives the same bytes.
    """
    path = Path(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and raw.get("nbformat") == 4 and raw.get("nbformat_minor", 0) >= 5:
        for i, cell in enumerate(raw.get("cells", [])):
            if isinstance(cell, dict) and not cell.get("id"):
                cell["id"] = f"cell-{i}"
    return nbformat.reads(json.dumps(raw), as_version=4)


def serialize(nb) -> str:
    """Serialise a notebook the one way exercises are stored: nbformat's sorted JSON + newline."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def sha256(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes (what the manifest records)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- transformation
def _string_literal(message: str) -> str:
    return json.dumps(message, ensure_ascii=False)  # a JSON string is a valid Python literal


def _raise_lines(message: str, indent: str) -> list[str]:
    """``raise NotImplementedError("...")``, wrapped over several lines if it would be too long."""
    one = f'{indent}raise NotImplementedError({_string_literal(message)})'
    if len(one) <= LINE_LENGTH:
        return [one]
    width = max(20, LINE_LENGTH - len(indent) - 4 - 3)
    chunks = textwrap.wrap(message, width=width, break_long_words=False, break_on_hyphens=False)
    chunks = [c + " " for c in chunks[:-1]] + chunks[-1:]
    body = [f"{indent}    {_string_literal(c)}" for c in chunks]
    return [f"{indent}raise NotImplementedError(", *body, f"{indent})"]


def _enclosing_function(lines: list[str], begin: int, indent: str) -> str | None:
    for line in reversed(lines[:begin]):
        match = _DEF.match(line)
        if match and len(match.group(1)) < len(indent):
            return match.group(2)
    return None


def _code_stub(lines: list[str], begin: int, region: list[str]) -> list[str]:
    """The lines that replace one solution region (``region`` excludes the marker lines)."""
    indent = re.match(r"\s*", lines[begin]).group(0)
    body = [ln for ln in region if ln.strip()]
    todo = _TODO.match(body[0]) if body else None
    if todo and todo.group(1):
        comment, words = [indent + body[0].strip()], [todo.group(1)]
        for line in body[1:]:  # continuation: "#" then at least two spaces
            more = _TODO_MORE.match(line)
            if not more:
                break
            comment.append(indent + line.strip())
            words.append(more.group(1))
        return [*comment, *_raise_lines(" ".join(words), indent)]
    name = _enclosing_function(lines, begin, indent)
    message = f"implement {name}()" if name else "replace this line with your code"
    return [indent + "# YOUR CODE HERE", *_raise_lines(message, indent)]


def _replace_regions(source: str, where: str, *, code: bool) -> tuple[str, int, int]:
    """Return ``(new_source, n_solution_regions, n_hidden_regions)`` for one cell's source."""
    lines = source.split("\n")
    out: list[str] = []
    state, begin, region = None, 0, []
    n_solution = n_hidden = 0
    for i, line in enumerate(lines):
        marker = next((m for m in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
                       if m in line), None)
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if state is not None:
                raise ExerciseError(f"{where}: line {i + 1} opens '{marker}' inside an open "
                                    f"'{state}' region (regions cannot nest)")
            state, begin, region = marker, i, []
        elif marker in (END_SOLUTION, END_HIDDEN):
            expected = BEGIN_SOLUTION if marker == END_SOLUTION else BEGIN_HIDDEN
            if state != expected:
                raise ExerciseError(f"{where}: line {i + 1} has '{marker}' without a matching "
                                    f"'{expected}'")
            if state == BEGIN_SOLUTION:
                n_solution += 1
                out.extend(_code_stub(lines, begin, region) if code else [TEXT_STUB])
            else:
                n_hidden += 1
            state = None
        elif state is None:
            out.append(line)
        else:
            region.append(line)
    if state is not None:
        closing = END_SOLUTION if state == BEGIN_SOLUTION else END_HIDDEN
        raise ExerciseError(f"{where}: '{state}' on line {begin + 1} is never closed by "
                            f"'{closing}'")
    return "\n".join(out), n_solution, n_hidden


def _check_cell_metadata(cell, where: str, seen: set[str]) -> None:
    meta = nbgrader_meta(cell)
    if not meta:
        return
    gid = grade_id(cell)
    if gid is None or not _GRADE_ID.match(gid):
        raise ExerciseError(f"{where}: nbgrader cell needs a grade_id of letters, digits, '_' "
                            f"or '-' (got {meta.get('grade_id')!r})")
    if gid in seen:
        raise ExerciseError(f"{where}: grade_id {gid!r} is used by two cells")
    seen.add(gid)
    missing = [key for key in _NBGRADER_KEYS if key not in meta]
    if missing or meta.get("schema_version") != NBGRADER_SCHEMA or meta.get("task"):
        raise ExerciseError(
            f"{where}: nbgrader metadata needs schema_version {NBGRADER_SCHEMA} and the keys "
            f"{', '.join(_NBGRADER_KEYS)} (task false); missing {missing or 'none'}, "
            f"schema_version {meta.get('schema_version')!r}")
    if meta.get("grade"):
        try:
            check_range("points", meta.get("points"), 0, None, low_open=True, high_open=True,
                        hint="a graded cell declares the points it is worth")
        except ValueError as err:
            raise ExerciseError(f"{where}: {err}") from None


def generate_notebook(solution, *, name: str = "solution") -> nbformat.NotebookNode:
    """Return the learner's version of a solution notebook (the input is not modified).

    ``name`` (usually the file name) is only used in error messages. Raises
    :class:`ExerciseError` for nested or unclosed markers, a solution region outside an answer
    cell, hidden tests outside a graded test cell, a missing/duplicate ``grade_id`` or
    non-positive ``points``.
    """
    nb = copy.deepcopy(solution)
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}" + (f" ({grade_id(cell)})" if grade_id(cell) else "")
        _check_cell_metadata(cell, where, seen)
        source, n_solution, n_hidden = _replace_regions(cell.source, where,
                                                         code=cell.cell_type == "code")
        if n_solution and not is_answer_cell(cell):
            raise ExerciseError(f"{where}: has a solution region but is not an answer cell; add "
                                "metadata {\"nbgrader\": {\"solution\": true, \"grade\": false, "
                                "\"grade_id\": \"...\", \"locked\": false, "
                                "\"schema_version\": 3, \"task\": false}}")
        if is_test_cell(cell) and cell.cell_type != "code":
            raise ExerciseError(f"{where}: a graded test cell must be a code cell")
        if n_hidden and not is_test_cell(cell):
            raise ExerciseError(f"{where}: has hidden tests but is not a graded test cell; add "
                                "metadata {\"nbgrader\": {\"grade\": true, \"solution\": false, "
                                "\"grade_id\": \"...\", \"points\": N, \"locked\": true, "
                                "\"schema_version\": 3, \"task\": false}}")
        if is_answer_cell(cell) and not n_solution:  # nbgrader: a whole answer cell is replaced
            if cell.cell_type == "code":
                source = "\n".join(["# YOUR CODE HERE", *_raise_lines(
                    "replace this line with your code", "")])
            else:
                source = TEXT_STUB
        if n_hidden and not source.strip():
            source = HIDDEN_ONLY_NOTE
        cell.source = source
        if not cell.get("id"):
            cell["id"] = f"cell-{i}"
        for key in _DROP_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if is_test_cell(cell) or nbgrader_meta(cell).get("locked"):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        elif is_answer_cell(cell):
            cell.metadata["deletable"] = False
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("celltoolbar", None)
    nbformat.validate(nb)
    return nb


# ---------------------------------------------------------------------------- the folders
@dataclass
class Plan:
    """What generation would do: file name → new content, and the findings per category."""

    contents: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    up_to_date: list[str] = field(default_factory=list)
    to_write: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # edited since last generated
    orphans: list[str] = field(default_factory=list)  # exercise without a solution


def solution_files(solutions_dir: str | os.PathLike) -> list[Path]:
    """The solution notebooks (``*.ipynb`` directly in ``solutions_dir``), sorted by name."""
    return sorted(Path(solutions_dir).glob("*.ipynb"))


def load_manifest(exercises_dir: str | os.PathLike) -> dict[str, str]:
    """Read ``exercises/.generated.json`` (file name → sha256); empty if missing or unreadable."""
    path = Path(exercises_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def generate_solution_file(path: str | os.PathLike) -> str:
    """Generate the exercise for one solution file and return its serialised text.

    The notebook must declare ``metadata.sslkit.exercise`` equal to its file stem (the grader
    finds ``solutions/<exercise>.ipynb`` from a submission's metadata).
    """
    path = Path(path)
    try:
        solution = read_notebook(path)
    except (OSError, ValueError) as err:
        raise ExerciseError(f"{path}: cannot read the notebook: {err}") from None
    declared = exercise_id(solution)
    if declared != path.stem:
        raise ExerciseError(f"{path}: notebook metadata must contain "
                            f"{{\"sslkit\": {{\"exercise\": \"{path.stem}\"}}}} "
                            f"(found exercise={declared!r})")
    return serialize(generate_notebook(solution, name=path.name))


def plan(solutions_dir: str | os.PathLike, exercises_dir: str | os.PathLike) -> Plan:
    """Generate every exercise in memory and compare with what is on disk (writes nothing)."""
    exercises_dir = Path(exercises_dir)
    result = Plan(manifest=load_manifest(exercises_dir))
    for path in solution_files(solutions_dir):
        text = generate_solution_file(path)
        result.contents[path.name] = text
        target = exercises_dir / path.name
        if not target.exists():
            result.to_write.append(path.name)
            continue
        existing = target.read_bytes()
        if existing == text.encode("utf-8"):
            result.up_to_date.append(path.name)
        elif result.manifest.get(path.name) == hashlib.sha256(existing).hexdigest():
            result.to_write.append(path.name)
        else:
            result.conflicts.append(path.name)
    if exercises_dir.is_dir():
        result.orphans = sorted(p.name for p in exercises_dir.glob("*.ipynb")
                                if p.name not in result.contents)
    return result


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)


def _backup_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = path.with_name(f"{path.name}.bak-{stamp}"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}.bak-{stamp}-{n}"), n + 1
    return candidate


def generate(solutions_dir: str | os.PathLike = "solutions",
             exercises_dir: str | os.PathLike = "exercises", *, force: bool = False,
             out=None) -> int:
    """Write ``exercises/`` from ``solutions/``; return the exit status (0 ok, 1 refused).

    Refuses (writes nothing, status 1) when an exercise file differs from what was last
    generated, unless ``force``: then each such file is first copied to
    ``<name>.bak-<timestamp>``. Orphaned exercises that are unmodified generated files are
    removed; edited orphans are kept and reported.
    """
    out = out or sys.stdout
    exercises_dir = Path(exercises_dir)
    p = plan(solutions_dir, exercises_dir)
    if p.conflicts and not force:
        names = "\n".join(f"  {exercises_dir / n}" for n in p.conflicts)
        print(f"refusing to overwrite {len(p.conflicts)} exercise file(s) that differ from what "
              f"was last generated (edited by hand, or a learner's copy):\n{names}\n"
              "Nothing was written. Re-run with --force (make exercises FORCE=1) to regenerate "
              "them; each edited file is first saved as <name>.bak-<timestamp>.", file=out)
        return 1
    exercises_dir.mkdir(parents=True, exist_ok=True)
    manifest = {n: h for n, h in p.manifest.items() if n in p.contents or n in p.orphans}
    for name in p.conflicts:
        backup = _backup_name(exercises_dir / name)
        shutil.copy2(exercises_dir / name, backup)
        print(f"saved the edited {exercises_dir / name} as {backup}", file=out)
    for name in [*p.conflicts, *p.to_write]:
        _write_atomic(exercises_dir / name, p.contents[name])
        print(f"wrote {exercises_dir / name}", file=out)
    for name, text in p.contents.items():
        manifest[name] = sha256(text)
    for name in p.orphans:
        path = exercises_dir / name
        if manifest.get(name) == hashlib.sha256(path.read_bytes()).hexdigest():
            path.unlink()
            manifest.pop(name)
            print(f"removed {path}: its solution is gone", file=out)
        else:
            print(f"warning: {path} has no solution in {solutions_dir} and was edited; "
                  "left in place (delete it by hand)", file=out)
    manifest_text = json.dumps(dict(sorted(manifest.items())), indent=1) + "\n"
    manifest_path = exercises_dir / MANIFEST
    if not manifest_path.exists() or manifest_path.read_text(encoding="utf-8") != manifest_text:
        _write_atomic(manifest_path, manifest_text)
    print(f"{len(p.contents)} exercise(s) generated from {solutions_dir} "
          f"({len(p.up_to_date)} already up to date)", file=out)
    return 0


def check(solutions_dir: str | os.PathLike = "solutions",
          exercises_dir: str | os.PathLike = "exercises", *, out=None) -> int:
    """Regenerate in memory and compare byte for byte; return 0 in sync, 1 with a list if not.

    Reports drifted files (content differs), missing files, orphaned files (an exercise without
    a solution) and a stale ``.generated.json``.
    """
    out = out or sys.stdout
    exercises_dir = Path(exercises_dir)
    p = plan(solutions_dir, exercises_dir)
    problems = [f"  drifted:  {exercises_dir / n} differs from what {Path(solutions_dir) / n} "
                "generates" for n in p.conflicts + [n for n in p.to_write
                                                    if (exercises_dir / n).exists()]]
    problems += [f"  missing:  {exercises_dir / n} (solution {Path(solutions_dir) / n})"
                 for n in p.to_write if not (exercises_dir / n).exists()]
    problems += [f"  orphaned: {exercises_dir / n} has no solution in {solutions_dir}"
                 for n in p.orphans]
    stale = [n for n in p.up_to_date if p.manifest.get(n) != sha256(p.contents[n])]
    if stale:
        problems.append(f"  stale:    {exercises_dir / MANIFEST} does not record "
                        f"{', '.join(stale)}")
    if problems:
        print(f"exercises out of sync with {solutions_dir}:\n" + "\n".join(problems) +
              "\nRun `make exercises` (python -m sslkit.exercises) to regenerate.", file=out)
        return 1
    print(f"{len(p.contents)} exercise(s) in sync with {solutions_dir}", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m sslkit.exercises [--check] [--force] [--solutions DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m sslkit.exercises",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk, write nothing, exit 1 on drift")
    parser.add_argument("--force", action="store_true",
                        help="overwrite edited exercise files (a .bak-<timestamp> copy is kept)")
    parser.add_argument("--solutions", default="solutions", help="default: solutions/")
    parser.add_argument("--exercises", default="exercises", help="default: exercises/")
    args = parser.parse_args(argv)
    if args.check and args.force:
        parser.error("--check and --force cannot be combined")
    if Path(args.solutions).exists() and not Path(args.solutions).is_dir():
        parser.error(f"--solutions={args.solutions!r} is not a folder")
    try:
        if args.check:
            return check(args.solutions, args.exercises)
        return generate(args.solutions, args.exercises, force=args.force)
    except ExerciseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
