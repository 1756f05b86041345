"""`sslkit.report.record` and the headless course runner behind `make run`."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from sslkit import course, report


def test_record_writes_to_the_results_file_when_run_by_the_runner(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    monkeypatch.setenv("SSLKIT_RESULTS", str(target))
    assert report.record("knn_acc_10pc", 0.25, quiet=True) == 0.25
    report.record("probe_acc_10pc", 0.5, quiet=True)
    assert json.loads(target.read_text()) == {"knn_acc_10pc": 0.25, "probe_acc_10pc": 0.5}
    assert report.recorded()["probe_acc_10pc"] == 0.5


@pytest.mark.parametrize("name, value, match", [
    ("Bad Name", 0.1, "name="), ("acc", float("nan"), "finite"), ("acc", "high", "number"),
])
def test_record_rejects_bad_names_and_values(name, value, match):
    with pytest.raises(ValueError, match=match):
        report.record(name, value)


def _write(path, *sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def test_runner_collects_metrics_times_and_names_the_failing_cell(tmp_path, capsys):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _write(nbs / "00_good.ipynb", "import os\nfrom sslkit import report",
           "report.record('answer', 0.42)\nassert os.environ['SSLKIT_PROFILE'] == 'quick'")
    _write(nbs / "01_bad.ipynb", "x = 1", "# the broken cell\nraise RuntimeError('boom')",
           "print('never')")
    out = tmp_path / "build"
    status = course.main([str(nbs), "--out", str(out), "--timeout", "120"])
    assert status == 1
    results = json.loads((out / "results.json").read_text())
    assert results["00_good"]["status"] == "ok"
    assert results["00_good"]["metrics"] == {"answer": 0.42}
    assert results["00_good"]["seconds"] > 0
    assert results["01_bad"]["status"] == "failed"
    assert "cell 1" in results["01_bad"]["error"] and "boom" in results["01_bad"]["error"]
    assert (out / "html" / "00_good.html").exists()
    assert (out / "notebooks" / "01_bad.ipynb").exists()
    printed = capsys.readouterr().out
    assert "answer=0.420" in printed and "FAILED at cell 1" in printed


def test_runner_gives_full_profile_cells_hours_and_quick_ones_ten_minutes(tmp_path, monkeypatch):
    seen = []

    def fake_run(path, out_dir, *, timeout, profile):
        seen.append((profile, timeout))
        return {"status": "ok", "seconds": 1.0, "metrics": {}}

    monkeypatch.setattr(course, "run_notebook", fake_run)
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _write(nbs / "00_any.ipynb", "x = 1")
    args = [str(nbs), "--out", str(tmp_path / "build")]
    monkeypatch.delenv("SSLKIT_PROFILE", raising=False)
    assert course.main(args) == 0            # the runner's default is quick, even on a GPU
    monkeypatch.setenv("SSLKIT_PROFILE", "full")
    assert course.main(args) == 0
    assert course.main([*args, "--timeout", "50"]) == 0
    monkeypatch.setenv("SSLKIT_PROFILE", "quick")
    assert course.main(args) == 0
    assert seen == [("quick", 600), ("full", 4 * 3600), ("full", 50), ("quick", 600)]
