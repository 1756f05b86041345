"""Profiles: one place that says how big every notebook's runs are.

``quick`` is the CPU profile (ShapeWorld, small CNN, about a minute per training cell on two
cores); ``full`` is the GPU profile (more data, more steps, bigger encoders). ``SSLKIT_PROFILE``
overrides the automatic choice, so ``SSLKIT_PROFILE=quick`` on a GPU reproduces CI exactly.
``SSLKIT_SEED`` (default 0) is the base seed of every lecture: a lecture derives all its seeds
(data, initialisation, views) from ``sizes(...).seed``, so ``SSLKIT_SEED=1`` re-runs it with
all of them shifted together, which is how a claim is checked for seed robustness.

The dataset (``sizes(...).dataset``, read by ``data.lecture_splits``): ``quick`` runs on
ShapeWorld; ``full`` runs on CIFAR-10 (else STL-10) when its files are in ``SSLKIT_DATA``
(default ``~/.cache/sslkit/data``, torchvision's layout), else on ShapeWorld. ``SSLKIT_DATASET``
(``shapeworld``, ``cifar10``, ``stl10``, ``mnist``) names one instead, downloaded when missing;
``quick`` refuses a real one (its budgets and the claims its lectures assert were tuned on
ShapeWorld). A lecture whose experiments need ShapeWorld's known factors stays on it (and
warns if a real dataset was named).

A notebook asks for its numbers with ``sslkit.sizes("03_contrastive_simclr")`` and never writes
a size of its own: changing a budget is a one-line edit here, visible to every reader.
"""

from __future__ import annotations

import os
import random
import warnings
from types import SimpleNamespace

import torch

from ._validate import check_choice

PROFILES = ("quick", "full")

# Sizes shared by every notebook unless it overrides them.
_COMMON = {
    "quick": dict(
        dataset="shapeworld", preset="hard", image_size=32, n_unlabeled=10_000,
        labels_per_class=100, n_val=1_000, n_test=2_000, backbone="small_cnn",
        batch_size=256, steps=400,
    ),
    "full": dict(
        dataset="shapeworld", preset="hard", image_size=32, n_unlabeled=50_000,
        labels_per_class=100, n_val=5_000, n_test=10_000, backbone="resnet18",
        batch_size=512, steps=20_000,
    ),
}

# Per-notebook overrides. Keys are notebook stems (file name without ``.ipynb``).
_NOTEBOOKS: dict[str, dict[str, dict]] = {
    "00_tour_and_protocol": {
        # No pretraining here: the unlabeled pool is only shown. 300 labels per class make the
        # "all labels" point of the label-efficiency curve 3x the 100-per-class point.
        "quick": dict(n_unlabeled=2_000, labels_per_class=300, supervised_steps=300,
                      supervised_lr=5e-3),
        "full": dict(n_unlabeled=50_000, labels_per_class=500, supervised_steps=3_000,
                     supervised_lr=2e-3),
    },
    "01_why_unlabeled_data_helps": {
        "quick": dict(n_trials=20, ms=(30, 100, 1_000, 10_000),
                      ns=(2, 3, 5, 10, 30, 100, 300, 1_000, 3_000), test_size=20_000),
        "full": dict(n_trials=200, ms=(30, 100, 1_000, 10_000),
                     ns=(2, 3, 5, 10, 30, 100, 300, 1_000, 3_000), test_size=100_000),
    },
    "02_pretext_tasks": {
        # Tuned on 2 CPU cores (hard preset, upright = max_rotation 0): RotNet gains most from
        # many small steps (batch 16, i.e. 64 images after the 4 rotations, lr 3e-3); 128 images
        # per step at lr 1e-3 gave a third of the gain for the same time
        # (benchmarks/rotnet_budget.py reruns that comparison). The rotated world's loss stays at
        # log 4 from the start, so it gets half the steps. Probes: 10 labels/class.
        # Position prediction: 8 px patches (16 positions), a 64-wide ViT; the default 4 px,
        # 128-wide ViT was ~5x slower per step for a similar probe gain.
        # Label augmentation (section 8): 300 steps of 64 labelled images x 4 rotations; at 200
        # steps the joint 4K-way head had not yet overtaken the plain baseline on every seed.
        "quick": dict(labels_per_class=10, upright_rotation=0.0, rotnet_steps=1_200,
                      rotnet_batch_size=16, rotnet_lr=3e-3, rotated_steps=600,
                      jigsaw_steps=400, jigsaw_batch_size=32, jigsaw_lr=3e-3, jigsaw_jitter=4,
                      vit=dict(patch_size=8, dim=64, depth=3, heads=4), position_steps=600,
                      position_batch_size=64, position_lr=2e-3, position_mask_ratio=0.5,
                      panel_n_unlabeled=2_000, panel_n_val=500, panel_n_test=1_000,
                      panel_steps=300, sla_steps=300, sla_batch_size=64, sla_lr=3e-3,
                      bar_sla_over_plain=0.01),
        "full": dict(labels_per_class=10, upright_rotation=0.0, rotnet_steps=20_000,
                     rotnet_batch_size=64, rotnet_lr=1e-3, rotated_steps=10_000,
                     jigsaw_steps=10_000, jigsaw_batch_size=128, jigsaw_lr=1e-3, jigsaw_jitter=4,
                     vit=dict(patch_size=4, dim=192, depth=6, heads=6), position_steps=20_000,
                     position_batch_size=256, position_lr=5e-4, position_mask_ratio=0.5,
                     panel_n_unlabeled=10_000, panel_n_val=1_000, panel_n_test=2_000,
                     panel_steps=500, sla_steps=2_000, sla_batch_size=64, sla_lr=1e-3,
                     bar_sla_over_plain=None),
    },
    "03_contrastive_simclr": {
        # `easy` in quick: one CPU minute of SimCLR on `hard` probes at ~18 % (10/class), too
        # close to its baselines to teach; on `easy` it clears the course's bars
        # (benchmarks/simclr_quick.py and benchmarks/README.md). Views are 24 px crops (keeping
        # >= half of the 32 px image), probes see the full 32 px images: 1.7x cheaper per step
        # and more accurate.
        "quick": dict(preset="easy", steps=500, batch_size=128, lr=3e-3, temperature=0.2,
                      view_size=24, proj_hidden=512, proj_dim=128, crop_scale=(0.5, 1.0),
                      supervised_lr=5e-3, sweep_temperatures=(0.02, 0.2, 5.0),
                      ablation_steps=150, panel_steps=100, bar_over_supervised=0.10,
                      bar_over_random=0.20, bar_100pc=0.50, bar_views_over_crop=0.20),
        "full": dict(preset="hard", steps=20_000, batch_size=512, lr=2e-3, temperature=0.2,
                     view_size=32, proj_hidden=2048, proj_dim=128, crop_scale=(0.2, 1.0),
                     supervised_lr=2e-3, sweep_temperatures=(0.02, 0.2, 5.0),
                     ablation_steps=2_000, panel_steps=300, bar_over_supervised=0.10,
                     bar_over_random=0.20, bar_100pc=0.50, bar_views_over_crop=0.20),
    },
    "04_contrastive_moco_supcon": {
        # The data, views and encoder of lecture 03; SimCLR and MoCo see the same images
        # (MoCo: batch / 4 for 4x the steps). A short MoCo run varies more across seeds than
        # SimCLR's (benchmarks/moco_seeds.py: 10-label probe 0.27-0.47 over seeds 0-2 against
        # SimCLR's 0.32-0.39), hence a 10-point bar for "MoCo within reach of SimCLR".
        "quick": dict(preset="easy", batch_size=128, lr=3e-3, moco_lr=2e-3, temperature=0.2,
                      view_size=24, proj_hidden=512, proj_dim=128, crop_scale=(0.5, 1.0),
                      simclr_steps=300, queue_size=512, momentum=0.99, supcon_temperature=0.2,
                      supcon_steps=300, sweep_steps=600, sweep_queue_sizes=(64, 512, 4096),
                      drift_steps=300, panel_steps=100, bar_moco_within=0.10,
                      bar_loss_below_chance=0.1, bar_stale_gap=0.05,
                      bar_supcon_over_simclr=0.03, bar_push_ratio=1.25,
                      nn_support=2048, nn_grid=8, bar_nn_same_class=0.10,
                      bar_gsimclr_precision=0.04),
        "full": dict(preset="hard", batch_size=512, lr=2e-3, moco_lr=1e-3, temperature=0.2,
                     view_size=32, proj_hidden=2048, proj_dim=128, crop_scale=(0.2, 1.0),
                     simclr_steps=10_000, queue_size=16_384, momentum=0.996,
                     supcon_temperature=0.2, supcon_steps=10_000, sweep_steps=20_000,
                     sweep_queue_sizes=(256, 4096, 16_384), drift_steps=1000, panel_steps=500,
                     bar_moco_within=0.05, bar_loss_below_chance=0.1, bar_stale_gap=0.05,
                     bar_supcon_over_simclr=0.03, bar_push_ratio=1.25, nn_support=16_384,
                     nn_grid=8, bar_nn_same_class=0.10, bar_gsimclr_precision=0.04),
    },
    "05_clustering": {
        # The data, views and encoder of lecture 03 (`easy` in quick). SwAV at batch 128 needs
        # more prototypes than embedding dimensions (else z hides in the prototypes' orthogonal
        # complement and every code is uniform) and ε = 0.02 (at the paper's 0.05 the codes of a
        # random encoder are near uniform and the run collapses to them).
        "quick": dict(preset="easy", batch_size=128, lr=1e-3, view_size=24, crop_scale=(0.5, 1.0),
                      proj_hidden=512, proj_dim=32, num_prototypes=100, swav_temperature=0.2,
                      epsilon=0.02, sinkhorn_iters=3, supervised_lr=5e-3,
                      swav_steps=800, n_local=2, local_size=12, local_scale=(0.1, 0.4),
                      freeze_prototypes_steps=40, knn_every=100,
                      sweep_epsilons=(0.01, 0.02, 0.05, 0.1), sweep_iters=(1, 3, 10),
                      dc_pool=4_000, dc_clusters=30, dc_steps=250,
                      sela_pool=2_000, sela_clusters=10, sela_steps=100, sela_epsilon=0.04,
                      scan_neighbours=20, scan_entropy_weight=5.0, scan_steps=500,
                      scan_batch_size=256, scan_lr=1e-2,
                      obow_words=64, obow_momentum=0.99, obow_steps=200, panel_steps=100,
                      bar_naive_largest=0.5, bar_fair_multiple=2.0, bar_below_uniform=0.1,
                      bar_scan_over_random=0.1, bar_swav_over_random=0.12,
                      bar_supervised_over_swav=0.2,
                      exercise_steps=100, exercise_batch_size=64),
        "full": dict(preset="hard", batch_size=512, lr=1e-3, view_size=32, crop_scale=(0.2, 1.0),
                     proj_hidden=2048, proj_dim=128, num_prototypes=1_000, swav_temperature=0.1,
                     epsilon=0.05, sinkhorn_iters=3, supervised_lr=2e-3,
                     swav_steps=10_000, n_local=4, local_size=16, local_scale=(0.05, 0.4),
                     freeze_prototypes_steps=300, knn_every=1_000,
                     sweep_epsilons=(0.01, 0.02, 0.05, 0.1), sweep_iters=(1, 3, 10),
                     dc_pool=50_000, dc_clusters=100, dc_steps=5_000,
                     sela_pool=10_000, sela_clusters=10, sela_steps=1_000, sela_epsilon=0.04,
                     scan_neighbours=20, scan_entropy_weight=5.0, scan_steps=2_000,
                     scan_batch_size=512, scan_lr=1e-3,
                     obow_words=256, obow_momentum=0.99, obow_steps=5_000, panel_steps=300,
                     bar_naive_largest=0.5, bar_fair_multiple=2.0, bar_below_uniform=0.1,
                     bar_scan_over_random=0.1, bar_swav_over_random=0.12,
                     bar_supervised_over_swav=None,   # measured, not asserted, on a GPU
                     exercise_steps=500, exercise_batch_size=256),
    },
    "06_self_distillation": {
        # The data, views and encoder of lecture 03 (`easy` in quick). In this budget none of
        # BYOL, SimSiam or DINO moves the probe far from random init (benchmarks/README.md,
        # negative_free_budget.py: no variant tried reached 0.23), so the quick profile teaches
        # the collapse mechanics and keeps the learning bars for `full`. The ablations run 150
        # steps, SimSiam without stop-gradient 300: at 150 its effective rank was still above 2.
        # DINO: K = 256 prototypes, τ_t = 0.04 < τ_s = 0.1, two 12 px local crops.
        "quick": dict(preset="easy", batch_size=128, lr=3e-3, view_size=24,
                      crop_scale=(0.5, 1.0), proj_hidden=512, proj_dim=128, pred_hidden=512,
                      simsiam_pred_hidden=32, momentum=0.99, steps=500, supervised_lr=5e-3,
                      num_prototypes=256, student_temperature=0.1, teacher_temperature=0.04,
                      center_momentum=0.9, n_local=2, local_size=12, ablation_steps=150,
                      simsiam_ablation_steps=300, sweep_steps=150, momenta=(0.9, 0.99, 0.999),
                      panel_steps=30, exercise_steps=100, exercise_batch_size=64,
                      bar_collapsed_rank=2.0, bar_complete_collapse=0.2, bar_one_hot=0.1,
                      bar_uniform=0.9, bar_byol_over_supervised=None, bar_over_random=None),
        "full": dict(preset="hard", batch_size=512, lr=2e-3, view_size=32, crop_scale=(0.2, 1.0),
                     proj_hidden=2048, proj_dim=256, pred_hidden=2048, simsiam_pred_hidden=512,
                     momentum=0.996, steps=20_000, supervised_lr=2e-3, num_prototypes=1024,
                     student_temperature=0.1, teacher_temperature=0.04, center_momentum=0.9,
                     n_local=4, local_size=16, ablation_steps=5_000,
                     simsiam_ablation_steps=5_000, sweep_steps=5_000,
                     momenta=(0.9, 0.99, 0.996), panel_steps=300, exercise_steps=500,
                     exercise_batch_size=256, bar_collapsed_rank=2.0, bar_complete_collapse=0.2,
                     bar_one_hot=0.1, bar_uniform=0.9, bar_byol_over_supervised=0.10,
                     bar_over_random=0.10),
    },
    "07_redundancy_reduction": {
        # The data, views and encoder of lecture 03 (`easy` in quick). Barlow Twins' λ balances
        # D diagonal terms against D² − D off-diagonal ones: near λ = 1/D it learns here, at
        # 4·λ or λ/4 it barely does (benchmarks/negative_free_budget.py). VICReg keeps the paper's
        # weights. Barlow Twins' bars are lower than VICReg's: over seeds 0-2 it probes at
        # 0.26-0.34 in 500 steps (VICReg 0.45-0.60, random init 0.17-0.19, crop + flip
        # 0.19-0.23). The ablations run shorter: both collapses are plain long before step 150.
        "quick": dict(preset="easy", batch_size=128, lr=3e-3, view_size=24, crop_scale=(0.5, 1.0),
                      proj_hidden=512, proj_dim=128, steps=500, supervised_lr=5e-3,
                      barlow_lambda=8e-3, wmse_dim=32, wmse_lr=1e-3, ablation_steps=150,
                      stepwise_dim=16, stepwise_out=4, stepwise_init=1e-3, stepwise_steps=600,
                      stepwise_lr=0.05, tldr_dim=16, tldr_neighbours=5, tldr_steps=200,
                      tldr_batch_size=512, panel_steps=30, bar_over_supervised=0.10,
                      bar_over_random=0.15, bar_barlow_over_supervised=0.0,
                      bar_barlow_over_random=0.05, bar_collapsed_std=0.2, bar_rank_drop=0.3,
                      bar_spearman=0.6, bar_diagonal_gain=0.3, exercise_steps=100,
                      exercise_batch_size=64),
        "full": dict(preset="hard", batch_size=512, lr=2e-3, view_size=32, crop_scale=(0.2, 1.0),
                     proj_hidden=2048, proj_dim=2048, steps=20_000, supervised_lr=2e-3,
                     barlow_lambda=5e-4, wmse_dim=64, wmse_lr=1e-3, ablation_steps=5_000,
                     stepwise_dim=16, stepwise_out=4, stepwise_init=1e-3, stepwise_steps=600,
                     stepwise_lr=0.05, tldr_dim=32, tldr_neighbours=5, tldr_steps=2_000,
                     tldr_batch_size=1024, panel_steps=300, bar_over_supervised=None,
                     bar_over_random=0.15, bar_barlow_over_supervised=None,
                     bar_barlow_over_random=0.15, bar_collapsed_std=0.2, bar_rank_drop=0.3,
                     bar_spearman=0.6, bar_diagonal_gain=0.3, exercise_steps=500,
                     exercise_batch_size=256),
    },
    "08_masked_modeling": {
        # `easy`, as lectures 03 and 07. A ViT with 8 px patches (16 per 32 px image): 4 px
        # patches cost over twice as much per step and fine-tuned no better after as many
        # seconds. Raw-pixel targets (in both profiles: the lecture scores reconstructions in
        # pixels): on ShapeWorld's flat backgrounds per-patch normalisation standardises noise,
        # and after 600 steps the encoder fine-tuned worse than from scratch with it (better
        # with raw pixels). The fine-tunes see the label-preserving colour views of lecture 03.
        "quick": dict(preset="easy", vit=dict(patch_size=8, dim=64, depth=3, heads=4),
                      decoder_dim=64, decoder_depth=1, mask_ratio=0.75, target="pixels",
                      steps=1_000, batch_size=128, lr=2e-3, crop_scale=(0.5, 1.0),
                      finetune_steps=300, finetune_lr=1e-3, contrastive_steps=500,
                      proj_hidden=512, proj_dim=128, temperature=0.2, speed_batch_size=128,
                      panel_steps=100, exercise_steps=100, exercise_batch_size=64,
                      bar_error_ratio=0.7, bar_finetune_over_scratch=0.05, bar_speedup=2.0),
        "full": dict(preset="hard", vit=dict(patch_size=4, dim=192, depth=6, heads=6),
                     decoder_dim=128, decoder_depth=2, mask_ratio=0.75, target="pixels",
                     steps=20_000, batch_size=512, lr=1.5e-3, crop_scale=(0.2, 1.0),
                     finetune_steps=3_000, finetune_lr=5e-4, contrastive_steps=10_000,
                     proj_hidden=2048, proj_dim=128, temperature=0.2, speed_batch_size=512,
                     panel_steps=1_000, exercise_steps=500, exercise_batch_size=256,
                     bar_error_ratio=0.7, bar_finetune_over_scratch=0.05, bar_speedup=2.0),
    },
}


# The datasets a lecture can run on, where not every one (``data.lecture.DATASETS``): lecture 02
# sets ShapeWorld's orientation and reads its shapes' symmetries; lecture 05 scores mined
# neighbours and clusters on the unlabeled pool's labels, which STL-10's unlabeled split lacks.
# Lecture 00's label-efficiency curve needs 500 labels per class plus val images: more than
# STL-10's 500 labeled images per class.
_NOTEBOOK_DATASETS: dict[str, tuple[str, ...]] = {
    "00_tour_and_protocol": ("shapeworld", "cifar10", "mnist"),
    "02_pretext_tasks": ("shapeworld",),
    "05_clustering": ("shapeworld", "cifar10", "mnist"),
}
# Sizes a real dataset changes in every lecture: STL-10 has 500 labeled training images per
# class, so 100 per class for val leaves 400 for the labeled set.
_DATASET_SIZES: dict[str, dict] = {"stl10": dict(n_val=1_000)}


def profile() -> str:
    """The active profile: ``SSLKIT_PROFILE`` if set, else ``full`` on a GPU, else ``quick``."""
    name = os.environ.get("SSLKIT_PROFILE", "").strip().lower()
    if name:
        return check_choice("SSLKIT_PROFILE", name, PROFILES)
    return "full" if torch.cuda.is_available() else "quick"


def device() -> torch.device:
    """Return the device the course computes on: ``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def base_seed() -> int:
    """``SSLKIT_SEED`` as a non-negative integer (0 when unset)."""
    text = os.environ.get("SSLKIT_SEED", "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"SSLKIT_SEED={text!r} is invalid: expected a non-negative integer "
                         "(the base seed every lecture derives its seeds from)")
    return int(text)


def data_root() -> str:
    """``SSLKIT_DATA``, where real datasets are read from (default ``~/.cache/sslkit/data``)."""
    return os.environ.get("SSLKIT_DATA", "").strip() or "~/.cache/sslkit/data"


def _dataset(profile_name: str, notebook: str | None) -> str:
    """The lecture's dataset: ``SSLKIT_DATASET`` if set (checked against the profile and the
    lecture); else in ``full`` the first of CIFAR-10 and STL-10 whose files are present and that
    the lecture runs on; else ShapeWorld."""
    from .data.lecture import DATASETS
    from .data.real import files_present

    allowed = _NOTEBOOK_DATASETS.get(notebook or "", DATASETS)
    text = os.environ.get("SSLKIT_DATASET", "").strip().lower()
    if not text:
        found = [n for n in ("cifar10", "stl10") if n in allowed and profile_name == "full"
                 and files_present(n, data_root())]
        return found[0] if found else "shapeworld"
    name = check_choice("SSLKIT_DATASET", text, DATASETS)
    if name != "shapeworld" and profile_name == "quick":
        raise ValueError(
            f"SSLKIT_DATASET={name!r} needs the full profile: the quick profile's budgets (about "
            "a CPU minute per run) and the claims its lectures assert were tuned on ShapeWorld. "
            "Set SSLKIT_PROFILE=full (meant for a GPU), or unset SSLKIT_DATASET.")
    if name not in allowed:
        warnings.warn(f"{notebook} runs on {' or '.join(allowed)}, not {name}: "
                      f"it uses ShapeWorld here (SSLKIT_DATASET={name} is ignored)", stacklevel=3)
        name = "shapeworld"
    return name


def sizes(notebook: str | None = None, profile_name: str | None = None) -> SimpleNamespace:
    """Return the sizes (data, model, budget) of ``notebook`` in the active (or given) profile.

    Unknown notebooks get the common sizes, so a new notebook works before it is tuned. The
    result also carries ``seed`` (:func:`base_seed`), the seed the notebook derives all of its
    own from, ``dataset`` (see the module's docstring: ShapeWorld, or in ``full`` a real
    dataset) and ``data_root`` (:func:`data_root`), which ``data.lecture_splits`` reads.
    """
    name = check_choice("profile_name", profile_name or profile(), PROFILES)
    values = dict(_COMMON[name])
    if notebook is not None:
        values.update(_NOTEBOOKS.get(notebook, {}).get(name, {}))
    values["profile"] = name
    values["seed"] = base_seed()
    values["dataset"] = _dataset(name, notebook)
    values.update(_DATASET_SIZES.get(values["dataset"], {}))
    values["data_root"] = data_root()
    return SimpleNamespace(**values)


def setup(seed: int = 0, *, verbose: bool = True) -> SimpleNamespace:
    """Seed Python's and torch's generators, pick device and profile, and print them.

    This is the setup cell of every notebook.

    Returns ``SimpleNamespace(device=..., profile=..., seed=...)``.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    dev, prof = device(), profile()
    if verbose:
        from . import __version__

        print(f"sslkit {__version__} | torch {torch.__version__} | device {dev} | profile {prof} "
              f"| threads {torch.get_num_threads()} | seed {seed}")
    return SimpleNamespace(device=dev, profile=prof, seed=seed)
