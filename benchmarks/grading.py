"""How long does grading a class take? 30 submissions of one exercise, on two CPU cores.

Target: under 5 minutes for 30 submissions of exercise 03 (the issue's bar for a classroom).
The class is a realistic mix built from the exercise: 12 correct answers (the solution's), 6
wrong ones (self-similarity left in the softmax), 6 left unfinished, 3 that call the library's
own loss, 3 that patch an assertion helper. Each submission is two runs (the learner's notebook,
then the grading run), each a fresh process that imports torch. The script grades the class with
``--jobs 1`` and ``--jobs 2`` and prints seconds, seconds per submission and the points and flags
found (a check that the mix graded as intended).

Run: ``.venv/bin/python benchmarks/grading.py`` (from the repository root, on a quiet machine).
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

from sslkit import exercises, grade
from sslkit._grade_sandbox import sandbox

ROOT = Path(__file__).resolve().parents[1]
NAME = "03_contrastive_simclr"
WRONG = '''def nt_xent(z1, z2, temperature=0.5):
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    b = z1.shape[0]
    pair = torch.cat([torch.arange(b) + b, torch.arange(b)])
    return torch.nn.functional.cross_entropy(z @ z.T / temperature, pair)'''
REFERENCE = '''def nt_xent(z1, z2, temperature=0.5):
    return losses.nt_xent(z1, z2, temperature)'''


def the_class(folder: Path) -> None:
    solution = exercises.read_notebook(ROOT / "solutions" / f"{NAME}.ipynb")
    exercise = nbformat.read(ROOT / "exercises" / f"{NAME}.ipynb", as_version=4)
    answer = next(c.source for c in solution.cells if exercises.grade_id(c) == "nt_xent_solution")
    kinds = ["correct"] * 12 + ["wrong"] * 6 + ["unfinished"] * 6 + ["reference"] * 3 + [
        "patched"] * 3
    for i, kind in enumerate(kinds):
        nb = copy.deepcopy(exercise)
        cell = next(c for c in nb.cells if exercises.grade_id(c) == "nt_xent_solution")
        cell.source = {"correct": answer, "wrong": WRONG, "reference": REFERENCE,
                       "patched": WRONG, "unfinished": cell.source}[kind]
        if kind == "patched":
            at = nb.cells.index(cell) + 1
            nb.cells.insert(at, nbformat.v4.new_code_cell("math.isclose = lambda *a, **k: True"))
        nb.metadata["sslkit"]["learner"] = f"{i:02d}_{kind}"
        nbformat.write(nb, folder / f"{i:02d}.ipynb")


def main() -> None:
    print(f"sandbox: {sandbox()}; exercise {NAME}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        the_class(folder)
        for jobs in (1, 2):
            start = time.perf_counter()
            results = grade.grade_folder(folder, ROOT / "solutions", timeout=120, jobs=jobs)
            seconds = time.perf_counter() - start
            outcome = Counter((r.learner.split("_", 1)[1], f"{r.total:g}/{r.max_total:g}",
                               r.flag_text()) for r in results)
            print(f"--jobs {jobs}: {len(results)} submissions in {seconds:.0f} s "
                  f"({seconds / len(results):.1f} s each)")
            for (kind, points, flags), n in sorted(outcome.items()):
                print(f"    {n:2d} x {kind:<10} {points:>5}  {flags}")


if __name__ == "__main__":
    main()
