"""Profiles: one place that says how big every notebook's runs are.

``quick`` is the CPU profile (ShapeWorld, small CNN, about a minute per training cell on two
cores); ``full`` is the GPU profile (more data, more steps, bigger encoders). ``SSLKIT_PROFILE``
overrides the automatic choice, so ``SSLKIT_PROFILE=quick`` on a GPU reproduces CI exactly.

A notebook asks for its numbers with ``sslkit.sizes("03_contrastive_simclr")`` and never writes
a size of its own: changing a budget is a one-line edit here, visible to every reader.
"""

from __future__ import annotations

import os
import random
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
}


def profile() -> str:
    """The active profile: ``SSLKIT_PROFILE`` if set, else ``full`` on a GPU, else ``quick``."""
    name = os.environ.get("SSLKIT_PROFILE", "").strip().lower()
    if name:
        return check_choice("SSLKIT_PROFILE", name, PROFILES)
    return "full" if torch.cuda.is_available() else "quick"


def device() -> torch.device:
    """Return the device the course computes on: ``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sizes(notebook: str | None = None, profile_name: str | None = None) -> SimpleNamespace:
    """Return the sizes (data, model, budget) of ``notebook`` in the active (or given) profile.

    Unknown notebooks get the common sizes, so a new notebook works before it is tuned.
    """
    name = check_choice("profile_name", profile_name or profile(), PROFILES)
    values = dict(_COMMON[name])
    if notebook is not None:
        values.update(_NOTEBOOKS.get(notebook, {}).get(name, {}))
    values["profile"] = name
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
