"""The benchmarks that measure speed keep working on a CPU: each runs in its smallest size and
prints the lines its README section reads. Speed itself is never asserted here (it is measured
by running the scripts on a quiet machine, or a GPU)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_gpu_step_smoke_runs_every_path_on_the_cpu():
    out = _run("benchmarks/gpu_step.py", "--smoke")
    for path in ("sslkit fit", "sslkit views, manual loop", "torchvision v2, 0 workers",
                 "torchvision v2, 2 workers"):
        assert re.search(rf"^{re.escape(path)} +[\d,]+ +[\d.]+$", out, re.M), (path, out)
    ratios = dict(re.findall(r"^sslkit_over_workers_(\d+) ([\d.]+)$", out, re.M))
    assert set(ratios) == {"0", "2"} and all(float(r) > 0 for r in ratios.values()), out
    # the kNN target of the smoke run (0) is reached at the first evaluation, on both paths
    assert len(re.findall(r"^  .+ +[\d.]+ s \(2 steps\)$", out, re.M)) == 2, out


def test_step_benchmark_runs_and_ends_with_its_speedup_line():
    out = _run("benchmarks/step.py", "2", "--no-compile")
    assert re.search(r"^cpu_step_speedup \d+\.\d+", out.strip().splitlines()[-1]), out
