"""`sslkit.exercises`: one solution notebook → one learner exercise, drift check, no lost work.

Built on a synthetic solution notebook (exercise id ``99_demo``), so the mechanism is tested
independently of the course's real exercises.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from notebook_helpers import passed

from sslkit import checks, exercises
from sslkit.exercises import ExerciseError

ANSWER = {"solution": True, "grade": False, "locked": False, "schema_version": 3,
          "task": False}
TEST = {"grade": True, "solution": False, "locked": True, "schema_version": 3,
        "task": False}
LONG_TODO = ("subtract the row maximum before exponentiating, so that exp never overflows, "
             "then divide by the row sum over the last dimension")
TODO_LINES = ("    # TODO: subtract the row maximum before exponentiating, so that exp never\n"
              "    #       overflows, then divide by the row sum over the last dimension\n"
              "    # (a plain comment of the solution, not part of the TODO)\n")


def cell(source, kind="code", **nbgrader):
    """A code or markdown cell with optional nbgrader metadata."""
    c = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if nbgrader:
        c.metadata["nbgrader"] = nbgrader
    return c


def demo_solution(exercise="99_demo"):
    """A small solution notebook using every convention the generator supports."""
    add = cell('def add(a, b):\n    """Return a + b."""\n    ### BEGIN SOLUTION\n'
               "    # TODO: return the sum of a and b\n    return a + b\n    ### END SOLUTION\n\n\n"
               'def sub(a, b):\n    """Return a - b."""\n    ### BEGIN SOLUTION\n'
               "    return a - b\n    ### END SOLUTION", grade_id="add_solution", **ANSWER)
    add.outputs = [new_output("stream", text="defined\n")]
    add.execution_count = 7
    add.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    nb = new_notebook(cells=[
        cell("# 99 demo\nImplement `add(a, b)`.", kind="markdown"),
        cell("import math\n\nfrom sslkit import checks"),
        add,
        cell("assert add(1, 2) == 3\nassert sub(3, 1) == 2", grade_id="add_public", points=1,
             **TEST),
        cell("assert add(2, 2) == 4\n### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\n"
             "assert sub(0, 5) == -5\n### END HIDDEN TESTS", grade_id="add_hidden", points=2,
             **TEST),
        cell("def my_softmax(logits):\n    ### BEGIN SOLUTION\n" + TODO_LINES +
             "    z = logits - logits.max(dim=-1, keepdim=True).values\n"
             "    return z.exp() / z.exp().sum(dim=-1, keepdim=True)\n    ### END SOLUTION",
             grade_id="softmax_solution", **ANSWER),
        cell("checks.softmax(my_softmax)"),
        cell("### BEGIN HIDDEN TESTS\nimport torch\n\nassert torch.allclose(my_softmax("
             "torch.zeros(1, 4)), torch.full((1, 4), 0.25))\n### END HIDDEN TESTS",
             grade_id="softmax_hidden", points=1, **TEST),
        cell("### BEGIN SOLUTION\ntotal = add(20, 22)\n### END SOLUTION",
             grade_id="total_solution", **ANSWER),
        cell("Why subtract the maximum?\n\n### BEGIN SOLUTION\nBecause exp(1000) overflows.\n"
             "### END SOLUTION", kind="markdown", grade_id="why", solution=True, grade=True,
             points=1, locked=False, schema_version=3, task=False),
    ])
    nb.metadata["sslkit"] = {"exercise": exercise}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def make_tree(root: Path, nb=None) -> tuple[Path, Path]:
    solutions, exercise_dir = root / "solutions", root / "exercises"
    solutions.mkdir(parents=True)
    nbformat.write(nb or demo_solution(), solutions / "99_demo.ipynb")
    return solutions, exercise_dir


def run_main(*args) -> int:
    return exercises.main([str(a) for a in args])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    solutions, exercise_dir = make_tree(root)
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 0
    return root


@pytest.fixture(scope="module")
def generated(tree):
    return nbformat.read(tree / "exercises" / "99_demo.ipynb", as_version=4)


@pytest.fixture
def copy_tree(tree, tmp_path):
    shutil.copytree(tree, tmp_path / "course")
    root = tmp_path / "course"
    return root / "solutions", root / "exercises"


def by_id(nb, gid):
    return next(c for c in nb.cells if exercises.grade_id(c) == gid)


# ---------------------------------------------------------------------------- the transformation
def test_solution_regions_become_indented_stubs_with_the_todo_message(generated):
    source = by_id(generated, "add_solution").source
    assert source == (
        'def add(a, b):\n    """Return a + b."""\n    # TODO: return the sum of a and b\n'
        '    raise NotImplementedError("return the sum of a and b")\n\n\n'
        'def sub(a, b):\n    """Return a - b."""\n    # YOUR CODE HERE\n'
        '    raise NotImplementedError("implement sub()")')
    namespace = {}
    exec(compile(source, "add_solution", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="^return the sum of a and b$"):
        namespace["add"](1, 2)
    with pytest.raises(NotImplementedError, match=r"^implement sub\(\)$"):
        namespace["sub"](1, 2)


def test_a_long_todo_is_wrapped_within_the_line_length_and_kept_whole(generated):
    source = by_id(generated, "softmax_solution").source
    assert all(len(line) <= exercises.LINE_LENGTH for line in source.splitlines())
    assert "logits.max" not in source and "z.exp()" not in source
    assert "#       overflows" in source and "plain comment" not in source
    namespace = {}
    exec(source, namespace)
    with pytest.raises(NotImplementedError) as info:
        namespace["my_softmax"](None)
    assert str(info.value) == LONG_TODO


def test_a_top_level_region_and_a_markdown_answer(generated):
    assert by_id(generated, "total_solution").source == (
        '# YOUR CODE HERE\nraise NotImplementedError("replace this line with your code")')
    assert by_id(generated, "why").source == "Why subtract the maximum?\n\nYOUR ANSWER HERE"


def test_hidden_tests_are_absent_from_the_exercise_but_present_in_the_solution(tree, generated):
    solution_text = (tree / "solutions" / "99_demo.ipynb").read_text()
    exercise_text = (tree / "exercises" / "99_demo.ipynb").read_text()
    for hidden in ("assert add(-1, 1) == 0", "assert sub(0, 5) == -5", "torch.full((1, 4)",
                   "BEGIN HIDDEN", "BEGIN SOLUTION", "Because exp(1000)"):
        assert hidden in solution_text
        assert hidden not in exercise_text
    assert by_id(generated, "add_hidden").source == "assert add(2, 2) == 4"
    assert by_id(generated, "softmax_hidden").source == exercises.HIDDEN_ONLY_NOTE


def test_outputs_and_counts_are_cleared_and_metadata_kept(generated):
    for c in generated.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
        assert "execution" not in c.metadata
    assert generated.metadata["sslkit"] == {"exercise": "99_demo"}
    test_cell = by_id(generated, "add_public")
    assert test_cell.metadata["nbgrader"]["points"] == 1
    assert test_cell.metadata["editable"] is False and test_cell.metadata["deletable"] is False
    assert by_id(generated, "add_solution").metadata["deletable"] is False
    assert "editable" not in by_id(generated, "add_solution").metadata
    assert len(generated.cells) == len(demo_solution().cells)


def test_generation_is_deterministic_and_recorded_in_the_manifest(tree):
    path = tree / "solutions" / "99_demo.ipynb"
    text = exercises.generate_solution_file(path)
    assert text == exercises.generate_solution_file(path)
    assert (tree / "exercises" / "99_demo.ipynb").read_bytes() == text.encode()
    manifest = json.loads((tree / "exercises" / exercises.MANIFEST).read_text())
    assert manifest == {"99_demo.ipynb": exercises.sha256(text)}
    assert not re.search(r"20\d\d-\d\d-\d\dT", text)  # no timestamps


def test_cells_without_ids_get_stable_ids(tmp_path):
    nb = demo_solution()
    raw = json.loads(nbformat.writes(nb))
    for c in raw["cells"]:
        del c["id"]
    path = tmp_path / "99_demo.ipynb"
    path.write_text(json.dumps(raw))
    first = exercises.generate_solution_file(path)
    assert first == exercises.generate_solution_file(path)
    assert '"id": "cell-0"' in first


def test_the_generated_exercise_passes_ruff(tree):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E,F,W",
         "--ignore", "E402,F401", "--line-length", str(exercises.LINE_LENGTH),
         str(tree / "exercises" / "99_demo.ipynb")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _errors(nb):
    nb = copy.deepcopy(nb)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
    client.execute()
    return nb, {i: (o.ename, o.evalue) for i, c in enumerate(nb.cells)
                if c.cell_type == "code" for o in c.outputs if o.output_type == "error"}


def test_executing_the_unsolved_exercise_raises_only_not_implemented_error(generated):
    _, errors = _errors(generated)
    assert {name for name, _ in errors.values()} == {"NotImplementedError"}
    # the visible tests, the public check (through its friendly message) and the top-level stub;
    # cell 7 holds only hidden tests, so the exercise's copy is a comment
    assert sorted(errors) == [3, 4, 6, 8]
    assert errors[6][1].startswith("softmax: not implemented yet: subtract the row maximum")


def test_executing_the_solution_passes_every_public_and_hidden_test(tree):
    solution, errors = _errors(nbformat.read(tree / "solutions" / "99_demo.ipynb", as_version=4))
    assert errors == {}
    assert passed(checks.softmax) in "".join(
        o.get("text", "") for o in solution.cells[6].outputs)


# ---------------------------------------------------------------------------- --check
def test_check_passes_when_in_sync(tree, capsys):
    assert run_main("--check", "--solutions", tree / "solutions",
                    "--exercises", tree / "exercises") == 0
    assert "1 exercise(s) in sync" in capsys.readouterr().out


def test_check_detects_an_edited_solution_and_names_the_file(copy_tree, capsys):
    solutions, exercise_dir = copy_tree
    nb = nbformat.read(solutions / "99_demo.ipynb", as_version=4)
    nb.cells[0].source += "\nOne more sentence."
    nbformat.write(nb, solutions / "99_demo.ipynb")
    before = (exercise_dir / "99_demo.ipynb").read_bytes()
    assert run_main("--check", "--solutions", solutions, "--exercises", exercise_dir) == 1
    out = capsys.readouterr().out
    assert f"drifted:  {exercise_dir / '99_demo.ipynb'}" in out and "make exercises" in out
    assert (exercise_dir / "99_demo.ipynb").read_bytes() == before  # --check writes nothing
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 0
    assert run_main("--check", "--solutions", solutions, "--exercises", exercise_dir) == 0


def test_check_reports_missing_orphaned_and_stale_manifest(copy_tree, capsys):
    solutions, exercise_dir = copy_tree
    shutil.copy(exercise_dir / "99_demo.ipynb", exercise_dir / "98_old.ipynb")
    (exercise_dir / "99_demo.ipynb").unlink()
    assert run_main("--check", "--solutions", solutions, "--exercises", exercise_dir) == 1
    out = capsys.readouterr().out
    assert "missing:  " in out and "99_demo.ipynb" in out
    assert f"orphaned: {exercise_dir / '98_old.ipynb'}" in out
    (exercise_dir / "98_old.ipynb").rename(exercise_dir / "99_demo.ipynb")
    (exercise_dir / exercises.MANIFEST).write_text("{}\n")
    assert run_main("--check", "--solutions", solutions, "--exercises", exercise_dir) == 1
    assert "stale:" in capsys.readouterr().out


# ---------------------------------------------------------------------------- learner work
def _edit_like_a_learner(path: Path) -> bytes:
    nb = nbformat.read(path, as_version=4)
    by_id(nb, "add_solution").source = "def add(a, b):\n    return a + b  # my work"
    nbformat.write(nb, path)
    return path.read_bytes()


def _change_solution(solutions: Path) -> None:
    nb = nbformat.read(solutions / "99_demo.ipynb", as_version=4)
    nb.cells[0].source += "\nA clarification."
    nbformat.write(nb, solutions / "99_demo.ipynb")


def test_regeneration_refuses_to_overwrite_an_edited_exercise(copy_tree, capsys):
    solutions, exercise_dir = copy_tree
    mine = _edit_like_a_learner(exercise_dir / "99_demo.ipynb")
    _change_solution(solutions)
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 1
    out = capsys.readouterr().out
    assert "refusing to overwrite 1 exercise file(s)" in out
    assert str(exercise_dir / "99_demo.ipynb") in out and "--force" in out
    assert (exercise_dir / "99_demo.ipynb").read_bytes() == mine
    assert not list(exercise_dir.glob("*.bak-*"))


def test_force_overwrites_and_keeps_a_backup_of_the_edited_copy(copy_tree, capsys):
    solutions, exercise_dir = copy_tree
    mine = _edit_like_a_learner(exercise_dir / "99_demo.ipynb")
    assert run_main("--force", "--solutions", solutions, "--exercises", exercise_dir) == 0
    backups = list(exercise_dir.glob("99_demo.ipynb.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == mine
    assert re.fullmatch(r"99_demo\.ipynb\.bak-\d{8}-\d{6}", backups[0].name)
    expected = exercises.generate_solution_file(solutions / "99_demo.ipynb")
    assert (exercise_dir / "99_demo.ipynb").read_text() == expected
    assert "saved the edited" in capsys.readouterr().out
    assert run_main("--check", "--solutions", solutions, "--exercises", exercise_dir) == 0


def test_an_unedited_generated_file_is_regenerated_without_force(copy_tree):
    solutions, exercise_dir = copy_tree
    _change_solution(solutions)
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 0
    assert "A clarification." in (exercise_dir / "99_demo.ipynb").read_text()


def test_a_file_missing_from_the_manifest_is_protected_unless_identical(copy_tree, capsys):
    solutions, exercise_dir = copy_tree
    (exercise_dir / exercises.MANIFEST).unlink()
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 0  # identical
    assert json.loads((exercise_dir / exercises.MANIFEST).read_text())
    (exercise_dir / exercises.MANIFEST).unlink()
    _change_solution(solutions)
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 1
    assert "refusing to overwrite" in capsys.readouterr().out


def test_orphans_are_removed_only_when_unedited(copy_tree, capsys):
    solutions, exercise_dir = copy_tree
    (solutions / "99_demo.ipynb").rename(solutions / "97_new.ipynb")
    nb = nbformat.read(solutions / "97_new.ipynb", as_version=4)
    nb.metadata["sslkit"]["exercise"] = "97_new"
    nbformat.write(nb, solutions / "97_new.ipynb")
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 0
    assert not (exercise_dir / "99_demo.ipynb").exists()
    assert (exercise_dir / "97_new.ipynb").exists()
    assert "removed" in capsys.readouterr().out
    shutil.copy(exercise_dir / "97_new.ipynb", exercise_dir / "96_kept.ipynb")
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 0
    assert (exercise_dir / "96_kept.ipynb").exists()  # never generated here: not deleted
    assert "left in place" in capsys.readouterr().out


def test_check_and_force_cannot_be_combined():
    with pytest.raises(SystemExit) as info:
        run_main("--check", "--force")
    assert info.value.code == 2


# ---------------------------------------------------------------------------- authoring errors
def _broken(kind):
    nb = demo_solution()
    if kind == "unclosed":
        nb.cells[2].source = nb.cells[2].source.replace("### END SOLUTION", "", 1)
        nb.cells[2].source = nb.cells[2].source.replace("    ### BEGIN SOLUTION\n    return a - b"
                                                        "\n    ### END SOLUTION", "")
    elif kind == "nested":
        nb.cells[2].source = "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"
    elif kind == "end_without_begin":
        nb.cells[4].source = "assert True\n### END HIDDEN TESTS"
    elif kind == "region_outside_answer":
        nb.cells[1].source += "\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    elif kind == "hidden_outside_test":
        nb.cells[1].source += "\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS"
    elif kind == "duplicate_id":
        nb.cells[3].metadata["nbgrader"]["grade_id"] = "add_solution"
    elif kind == "zero_points":
        nb.cells[3].metadata["nbgrader"]["points"] = 0
    elif kind == "no_grade_id":
        del nb.cells[3].metadata["nbgrader"]["grade_id"]
    elif kind == "markdown_test":
        nb.cells[0].metadata["nbgrader"] = {**TEST, "grade_id": "md", "points": 1}
    elif kind == "old_schema":
        del nb.cells[3].metadata["nbgrader"]["schema_version"]
    elif kind == "task_cell":
        nb.cells[3].metadata["nbgrader"]["task"] = True
    return nb


@pytest.mark.parametrize("kind, match", [
    ("unclosed", r"cell 2 \(add_solution\): 'BEGIN SOLUTION' on line 3 is never closed"),
    ("nested", "line 2 opens 'BEGIN SOLUTION' inside an open 'BEGIN SOLUTION' region"),
    ("end_without_begin", "line 2 has 'END HIDDEN TESTS' without a matching"),
    ("region_outside_answer", "cell 1: has a solution region but is not an answer cell"),
    ("hidden_outside_test", "cell 1: has hidden tests but is not a graded test cell"),
    ("duplicate_id", "grade_id 'add_solution' is used by two cells"),
    ("zero_points", r"points=0 is invalid: allowed range is \(0, inf\)"),
    ("no_grade_id", "needs a grade_id"),
    ("markdown_test", "a graded test cell must be a code cell"),
    ("old_schema", r"needs schema_version 3 .* missing \['schema_version'\]"),
    ("task_cell", r"needs schema_version 3 .*\(task false\); missing none"),
])
def test_authoring_mistakes_are_named(kind, match):
    with pytest.raises(ExerciseError, match=match):
        exercises.generate_notebook(_broken(kind), name="99_demo.ipynb")


def test_the_exercise_id_must_match_the_file_name(tmp_path, capsys):
    solutions, exercise_dir = make_tree(tmp_path, demo_solution(exercise="00_other"))
    assert run_main("--solutions", solutions, "--exercises", exercise_dir) == 1
    err = capsys.readouterr().err
    assert '{"sslkit": {"exercise": "99_demo"}}' in err and "'00_other'" in err
    assert not exercise_dir.exists()


def test_make_exercises_target_runs_the_module():
    root = Path(__file__).resolve().parents[1]
    cmd = ["make", "-n", "-o", ".venv/.installed", "-C", str(root)]
    check = subprocess.run([*cmd, "exercises", "CHECK=1"], capture_output=True, text=True)
    assert re.search(r"-m sslkit\.exercises --check\s*$", check.stdout, re.M), check.stdout
    force = subprocess.run([*cmd, "exercises", "FORCE=1"], capture_output=True, text=True)
    assert re.search(r"-m sslkit\.exercises\s+--force\s*$", force.stdout, re.M), force.stdout
    test = subprocess.run([*cmd, "test"], capture_output=True, text=True)
    assert "-m sslkit.exercises --check" in test.stdout
