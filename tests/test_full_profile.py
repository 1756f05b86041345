"""The ``full`` profile (GPU) is valid on any machine: every size a lecture reads exists there, and
the lectures' main runs built with the full sizes train for two steps (``sslkit.gpu_check
--smoke``, the same runs the GPU check times).

The full sizes are never executed in CI (they are meant for a GPU), so a wrong name, shape or
size would otherwise first fail in a lab. The sizes here are the profile's own; only the pool
and the batch are shrunk, so that ResNet-18 runs two steps on a CPU in seconds.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

import sslkit
from sslkit import gpu_check, masking, profiles

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "solutions").glob("*.ipynb"))


def _code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_size_a_notebook_reads_exists_in_both_profiles(path):
    code = _code(path)
    bindings = dict(re.findall(r'\b(\w+) = sslkit\.sizes\("(\w+)"', code))  # S, S03, …
    assert bindings or not re.search(r"\bS\.\w", code), f"{path.name} reads S.… unbound"
    for var, stem in bindings.items():
        names = set(re.findall(rf"\b{var}\.(\w+)", code))
        for name in ("quick", "full"):
            S = sslkit.sizes(stem, name)
            missing = sorted(n for n in names if not hasattr(S, n))
            assert not missing, f"{path.name}: {stem} in profile {name!r} has no {missing}"


@pytest.mark.parametrize("stem", sorted(profiles._NOTEBOOKS))
def test_quick_and_full_define_the_same_sizes(stem):
    quick, full = (set(profiles._NOTEBOOKS[stem][p]) for p in ("quick", "full"))
    assert quick == full, f"only in quick: {quick - full}, only in full: {full - quick}"


# ----------------------------------------------------------------------------- two steps each
@pytest.mark.parametrize("stem", sorted(gpu_check.LECTURES))
def test_every_lectures_full_runs_train_two_steps(stem):
    """``python -m sslkit.gpu_check --smoke``: each lecture's main runs, built from its full
    sizes, train two steps of a small batch and are probed."""
    runs, splits = gpu_check.lecture_runs(stem, smoke=True, device=torch.device("cpu"))
    assert runs
    for r in runs:
        out = gpu_check.run(r, splits, max_steps=None, smoke=True, device=torch.device("cpu"))
        assert out["steps"] == 2 and math.isfinite(out["final_loss"]), (r.name, out)
        assert 0.0 <= out["probe_acc_10pc"] <= 1.0 and out["full_steps"] >= 1, (r.name, out)


def test_full_sizes_meet_the_constraints_between_them():
    s04 = sslkit.sizes("04_contrastive_moco_supcon", "full")
    assert s04.nn_support <= s04.n_unlabeled
    # The lecture runs MoCo at batch B/4, and each step enqueues two keys per image.
    assert min(s04.queue_size, *s04.sweep_queue_sizes) >= 2 * (s04.batch_size // 4)
    s05 = sslkit.sizes("05_clustering", "full")
    assert s05.dc_pool <= s05.n_unlabeled and s05.sela_pool <= s05.n_unlabeled
    assert max(s05.dc_clusters, s05.sela_clusters, s05.scan_neighbours) < s05.dc_pool
    s07 = sslkit.sizes("07_redundancy_reduction", "full")
    assert s07.batch_size > s07.wmse_dim   # W-MSE whitens a batch: more rows than dimensions
    assert s07.tldr_batch_size <= s07.n_unlabeled and s07.tldr_neighbours < s07.n_unlabeled
    assert s07.stepwise_out <= s07.stepwise_dim
    s08 = sslkit.sizes("08_masked_modeling", "full")
    p = s08.vit["patch_size"]       # two-scale targets and the speed section halve the patch
    assert p % 2 == 0 and s08.image_size % p == 0
    assert 0 < masking.num_masked((s08.image_size // p) ** 2, s08.mask_ratio)


def test_the_gpu_check_command_writes_results_and_a_table(tmp_path, capsys):
    assert gpu_check.main(["--smoke", "--lectures", "00", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["smoke"] and list(results["lectures"]) == ["00_tour_and_protocol"]
    [(name, r)] = results["lectures"]["00_tour_and_protocol"].items()
    printed = capsys.readouterr().out
    assert results["data"] == {"00_tour_and_protocol": "shapeworld-hard"}
    assert re.search(rf"^00_tour_and_protocol +shapeworld-hard +{re.escape(name)} +2 ", printed,
                     re.M), printed
    assert gpu_check.main(["--smoke", "--lectures", "99"]) == 2
    with pytest.raises(SystemExit):
        gpu_check.main(["--smoke", "--max-steps", "0"])


def test_the_gpu_check_records_a_failed_run_and_goes_on(tmp_path, monkeypatch, capsys):
    real_run = gpu_check.run

    def flaky(r, *args, **kwargs):
        if r.name == "Jigsaw":
            raise FloatingPointError("the loss became NaN at step 2")
        return real_run(r, *args, **kwargs)

    monkeypatch.setattr(gpu_check, "run", flaky)
    assert gpu_check.main(["--smoke", "--lectures", "02", "--out", str(tmp_path)]) == 1
    runs = json.loads((tmp_path / "results.json").read_text())["lectures"]["02_pretext_tasks"]
    assert runs["Jigsaw"] == {"error": "FloatingPointError: the loss became NaN at step 2"}
    assert all("probe_acc_10pc" in r for name, r in runs.items() if name != "Jigsaw"), runs
    assert re.search(r"^02_pretext_tasks +shapeworld-hard +Jigsaw +FAILED: FloatingPointError",
                     capsys.readouterr().out, re.M)
