"""Committed notebooks are products: lectures and solutions are executed top to bottom in order,
exercises carry no outputs, and every lecture follows the template (COURSE.md §6)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from sslkit import exercises

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_executed_in_order_without_errors(path):
    cells = [c for c in _code_cells(path) if c.source.strip()]
    counts = [c.execution_count for c in cells]
    assert None not in counts, f"{path.name}: cells not executed: re-run it top to bottom"
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts} are out of order: restart and run all")
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: committed with an error output: {errors[0].ename}"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercises_carry_no_outputs(path):
    assert all(not c.outputs and c.execution_count is None for c in _code_cells(path))


# A section is a heading ("## Summary") or a bold label at the start of a line ("**Pitfalls**");
# the same words inside a sentence ("one at a time", "at test time") do not count.
def _section(name: str) -> re.Pattern:
    return re.compile(rf"^(#+\s*(\d+\.\s*)?|\*\*){name}", re.IGNORECASE | re.MULTILINE)


def test_the_template_patterns_reject_words_in_passing():
    assert not _section("summary").search("we call this summary statistics")
    assert _section("summary").search("text\n## Summary\n") and _section("pitfalls").search(
        "**Pitfalls**: none")


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lectures_follow_the_template(path):
    cells = [c.source for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "markdown"]
    header, text = cells[0], "\n".join(cells)
    for part in ("learning objectives", "prerequisites"):
        assert _section(part).search(header), f"{path.name}: its header lacks '{part}'"
    # the time estimates: the header's lab plan table, checked in tests/test_lecture_text.py
    for part in ("summary", "pitfalls", "further reading", "exercise"):
        assert _section(part).search(text), f"{path.name} lacks its '{part}' section"
    assert "you should see" in text.lower(), f"{path.name} never says what you should see"
    assert "arxiv" in text.lower(), f"{path.name} cites no paper"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_every_exercise_is_what_its_solution_generates(path):
    solution = ROOT / "solutions" / path.name
    assert exercises.generate_solution_file(solution) == path.read_text(encoding="utf-8")


def test_there_are_lectures_and_every_exercise_has_a_lecture():
    assert LECTURES
    lecture_stems = {p.stem for p in LECTURES}
    assert {p.stem for p in EXERCISES} <= lecture_stems


# The metrics each method lecture must record under these exact names (the course report and
# its readers look them up by name); the values come from the committed quick-profile run.
# Effective ranks are at least 1; every other recorded metric lies in [-1, 1].
RECORDED = {
    "00_tour_and_protocol": ("random_init_probe_acc_10pc", "supervised_scratch_acc_10pc"),
    "02_pretext_tasks": ("random_init_probe_acc_10pc", "rotnet_upright_probe_acc_10pc",
                         "rotnet_rotated_probe_acc_10pc"),
    "03_contrastive_simclr": ("random_init_probe_acc_10pc", "supervised_scratch_acc_10pc",
                              "simclr_probe_acc_10pc", "simclr_probe_acc_100pc"),
    "04_contrastive_moco_supcon": ("moco_probe_acc_10pc", "supcon_probe_acc_10pc"),
    "05_clustering": ("random_init_probe_acc_10pc", "supervised_scratch_acc_10pc",
                      "deepcluster_probe_acc_10pc", "swav_probe_acc_10pc", "obow_probe_acc_10pc",
                      "kmeans_cluster_acc", "scan_cluster_acc", "naive_largest_cluster_share",
                      "sinkhorn_largest_cluster_share"),
    "06_self_distillation": ("random_init_probe_acc_10pc", "supervised_scratch_acc_10pc",
                             "byol_probe_acc_10pc", "simsiam_probe_acc_10pc",
                             "dino_probe_acc_10pc", "simsiam_embedding_std",
                             "simsiam_no_stopgrad_embedding_std", "simsiam_effective_rank",
                             "simsiam_no_stopgrad_effective_rank",
                             "dino_no_centering_effective_rank"),
    "07_redundancy_reduction": ("random_init_probe_acc_10pc", "supervised_scratch_acc_10pc",
                                "barlow_twins_probe_acc_10pc", "vicreg_probe_acc_10pc",
                                "wmse_probe_acc_10pc", "vicreg_effective_rank",
                                "vicreg_no_variance_effective_rank",
                                "vicreg_no_covariance_effective_rank", "rankme_probe_spearman",
                                "tldr_probe_acc_10pc", "pca_probe_acc_10pc"),
    "08_masked_modeling": ("mae_masked_mse_ratio_to_mean_patch", "mae_probe_acc_10pc",
                           "mae_finetune_acc_10pc", "vit_scratch_finetune_acc_10pc",
                           "contrastive_probe_acc_10pc", "contrastive_finetune_acc_10pc",
                           "jepa_probe_acc_10pc", "mae_encoder_step_speedup",
                           "multiscale_mae_finetune_acc_10pc"),
}


@pytest.mark.parametrize("stem, names", RECORDED.items(), ids=list(RECORDED))
def test_lectures_record_their_metrics_under_the_agreed_names(stem, names):
    text = "".join(o.get("text", "") for c in _code_cells(ROOT / "notebooks" / f"{stem}.ipynb")
                   for o in c.outputs)
    recorded = {}
    for line in text.splitlines():
        if line.startswith("recorded "):
            name, value = line[len("recorded "):].split(" = ")
            recorded[name] = float(value)
    for name in names:
        assert name in recorded, f"{stem} does not record {name!r}"
        if name.endswith("_effective_rank"):  # RankMe: between 1 and the embedding's width
            assert recorded[name] >= 1.0, (name, recorded[name])
        elif name.endswith("_speedup"):       # a ratio of times: the faster path is faster
            assert recorded[name] > 1.0, (name, recorded[name])
        else:                                 # accuracies, shares and rank correlations
            assert -1.0 <= recorded[name] <= 1.0, (name, recorded[name])
