"""What does an encoder encode? Ridge regressions from frozen features to ShapeWorld's factors.

ShapeWorld returns with every image the factors that generated it (class, colour, scale,
position, rotation, background). A method that only discards information (colour, which the
views randomise) keeps the random init's R² on the other factors; one that learns raises them.
This script trains SimCLR, BYOL and VICReg for lecture 03's quick budget with its data, views and
encoder, and prints, for each encoder and the random init, the held-out R² of a ridge regression
from its features to each factor (circular factors as their cosine and sine; the class and the
background as one-hot vectors).

Run: ``.venv/bin/python benchmarks/factor_probe.py [steps]`` (default 500 steps; about 1.5
minutes on two quiet CPU cores).
"""

from __future__ import annotations

import dataclasses
import math
import sys

import torch
import torch.nn.functional as F

import sslkit
from sslkit import data, evaluate, models, views
from sslkit.methods import BYOL, SimCLR, VICReg
from sslkit.train import TrainConfig, fit


def _targets(factors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    def circle(angle):
        return torch.stack([torch.cos(angle), torch.sin(angle)], 1)

    return {
        "class": F.one_hot(factors["class"].long()).float(),
        "scale": factors["scale"][:, None].float(),
        "position": torch.stack([factors["x"], factors["y"]], 1).float(),
        "hue": circle(2 * math.pi * factors["hue"].float()),
        "value": factors["value"][:, None].float(),
        "background": F.one_hot(factors["background"].long()).float(),
        "background value": factors["background_value"][:, None].float(),
    }


def ridge_r2(features: torch.Tensor, y: torch.Tensor, l2: float = 10.0) -> float:
    """Fit on the first half (standardised features, a bias, ridge ``l2``), R² on the second."""
    n = len(y) // 2
    f = (features - features[:n].mean(0)) / (features[:n].std(0) + 1e-6)
    a = torch.cat([f, torch.ones(len(f), 1)], 1).double()
    y = y.double()
    w = torch.linalg.solve(a[:n].T @ a[:n] + l2 * torch.eye(a.shape[1], dtype=a.dtype),
                           a[:n].T @ y[:n])
    residual = ((a[n:] @ w - y[n:]) ** 2).sum()
    return float(1 - residual / ((y[n:] - y[n:].mean(0)) ** 2).sum())


def main(steps: int) -> None:
    S = sslkit.sizes("03_contrastive_simclr", "quick")
    sslkit.setup(seed=0, verbose=False)
    splits = data.shapeworld_splits(S.preset, n_unlabeled=S.n_unlabeled, labels_per_class=1,
                                    n_val=10, n_test=10, image_size=S.image_size, seed=0)
    probe_set = data.render(S.preset, 4000, seed=123)              # images with their factors
    recipe = dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                                 crop_scale=S.crop_scale)
    targets = _targets(probe_set.factors)
    print(f"{steps} steps of {S.batch_size} images; held-out R² of a ridge regression "
          f"(4,000 images, half to fit)")
    print(f"{'encoder':12s}" + "".join(f"{name:>18s}" for name in targets))
    for name, cls in (("random init", None), ("SimCLR", SimCLR), ("BYOL", BYOL),
                      ("VICReg", VICReg)):
        torch.manual_seed(0)
        encoder = models.backbone(S.backbone)
        if cls is not None:
            fit(cls(encoder, recipe=recipe), splits.unlabeled, progress=False,
                config=TrainConfig(steps=steps, batch_size=S.batch_size, lr=S.lr, seed=0))
        features = evaluate.extract_features(encoder, probe_set.images)
        print(f"{name:12s}" + "".join(f"{ridge_r2(features, y):18.2f}"
                                      for y in targets.values()), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
