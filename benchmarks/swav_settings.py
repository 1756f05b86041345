"""Which SwAV settings learn on lecture 05's small batch, and which collapse to uniform codes?

Lecture 05 trains SwAV at batch 128 on ShapeWorld ``easy`` (quick profile) with 100 prototypes on
a 32-dimensional sphere and ε = 0.02, not the paper's 3,000 prototypes in 128 dimensions and
ε = 0.05. This script reruns the settings that led there, each for the same short budget with
the lecture's data, views, encoder and probe, and prints per setting the final loss and code
entropy against log K (a run stuck at log K has collapsed to uniform codes) and the linear probe
with 10 labels per class. Multi-crop is off so that only the listed setting changes.

Run: ``.venv/bin/python benchmarks/swav_settings.py [steps]`` (default 300 steps per setting;
about 1 minute on two quiet CPU cores).
"""

from __future__ import annotations

import dataclasses
import math
import sys

import torch

import sslkit
from sslkit import data, evaluate, models, views
from sslkit.methods import SwAV
from sslkit.train import TrainConfig, fit

LECTURE = "lecture 05 (K = 100, D = 32, ε = 0.02, τ = 0.2)"
SETTINGS = {
    "K = 30 < D = 128, ε = 0.05, τ = 0.1": dict(num_prototypes=30, proj_dim=128, epsilon=0.05,
                                                temperature=0.1),
    "K = 100 > D = 32, ε = 0.05, τ = 0.1": dict(epsilon=0.05, temperature=0.1),
    "K = 100 > D = 32, ε = 0.02, τ = 0.1": dict(temperature=0.1),
    LECTURE: {},
}


def main(steps: int) -> None:
    S = sslkit.sizes("05_clustering", "quick")
    sslkit.setup(seed=S.seed, verbose=False)
    splits = data.shapeworld_splits(S.preset, n_unlabeled=S.n_unlabeled,
                                    labels_per_class=S.labels_per_class, n_val=S.n_val,
                                    n_test=S.n_test, image_size=S.image_size, seed=S.seed)
    x10, y10 = splits.labeled_subset(10)
    recipe = dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                                 crop_scale=S.crop_scale)

    def probe(encoder) -> float:
        f = [evaluate.extract_features(encoder, t) for t in (x10, splits.val_x, splits.test_x)]
        return evaluate.linear_probe(f[0], y10, f[2], splits.test_y, val_features=f[1],
                                     val_labels=splits.val_y).accuracy

    torch.manual_seed(S.seed)
    print(f"random init: probe {probe(models.backbone(S.backbone)):.3f}")
    print(f"{'setting':48s} {'loss':>6s} {'code H':>7s} {'log K':>6s} {'probe':>6s}")
    for name, overrides in SETTINGS.items():
        kw = {**dict(num_prototypes=S.num_prototypes, proj_dim=S.proj_dim, epsilon=S.epsilon,
                     temperature=S.swav_temperature), **overrides}
        torch.manual_seed(S.seed)
        method = SwAV(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                      sinkhorn_iters=S.sinkhorn_iters, n_local=0, recipe=recipe, **kw)
        h = fit(method, splits.unlabeled, config=TrainConfig(
            steps=steps, batch_size=S.batch_size, lr=S.lr, seed=S.seed), progress=False)
        last = slice(-20, None)
        loss = sum(h.loss[last]) / 20
        entropy = sum(h.logs["code_entropy"][last]) / 20
        print(f"{name:48s} {loss:6.2f} {entropy:7.2f} {math.log(kw['num_prototypes']):6.2f} "
              f"{probe(method.backbone):6.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
