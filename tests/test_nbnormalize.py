"""tools/nbnormalize.py, the git clean filter for lecture notebooks: a notebook JupyterLab saved
(its kernelspec, its Python version, integral floats as ints) normalises to the same text as the
notebook nbformat wrote."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("nbnormalize", ROOT / "tools" / "nbnormalize.py")
nbnormalize = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbnormalize)


def _as_jupyterlab_saves(text: str) -> str:
    """What JupyterLab writes after opening ``text`` with another kernel and Python."""
    nb = json.loads(text, parse_float=lambda s: int(float(s)) if float(s).is_integer()
                    else float(s))  # the browser's JSON keeps no 1.0 apart from 1
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"}
    nb["metadata"]["language_info"]["version"] = "3.12.9"
    return nbformat.writes(nbformat.from_dict(nb)) + "\n"  # the server writes with nbformat


def _notebook() -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(kernelspec={"display_name": "Python 3", "language": "python",
                                   "name": "python3"},
                       language_info={"name": "python", "version": "3.11.7"},
                       widgets={"state": {"min": -2.0, "max": 1.0, "step": 0.06, "n": 3}})
    nb.cells.append(nbformat.v4.new_code_cell("x = 1.0  # source text is never touched",
                                              id="c1"))
    return nbformat.writes(nb) + "\n"


def test_a_notebook_jupyterlab_saved_normalises_like_the_committed_one():
    committed = _notebook()
    saved = _as_jupyterlab_saves(committed)
    assert saved != committed
    normal = nbnormalize.normalize(committed)
    assert nbnormalize.normalize(saved) == normal
    assert nbnormalize.normalize(normal) == normal  # idempotent
    nb = json.loads(normal)
    assert nb["metadata"]["kernelspec"] == nbnormalize.KERNELSPEC
    assert "version" not in nb["metadata"]["language_info"]
    assert nb["metadata"]["widgets"]["state"] == {"min": -2, "max": 1, "step": 0.06, "n": 3}
    assert "x = 1.0  # source text" in normal


def test_the_filter_reads_stdin_and_passes_anything_else_through(tmp_path):
    run = [sys.executable, str(ROOT / "tools" / "nbnormalize.py")]
    out = subprocess.run(run, input=_notebook().encode(), capture_output=True, check=True).stdout
    assert out.decode() == nbnormalize.normalize(_notebook())
    assert nbnormalize.normalize("not json {") == "not json {"
    path = tmp_path / "a.ipynb"
    path.write_text(_notebook())
    assert subprocess.run([*run, "--check", str(path)], capture_output=True).returncode == 1
    subprocess.run([*run, "--fix", str(path)], check=True)
    assert subprocess.run([*run, "--check", str(path)], capture_output=True).returncode == 0
