"""Which negative-free methods learn in lecture 03's budget? Self-distillation (BYOL, SimSiam,
DINO) and redundancy reduction (VICReg, Barlow Twins, W-MSE) next to SimCLR.

Every setting trains for the same number of steps with lecture 03's quick-profile data (ShapeWorld
``easy``), views (strong colour, 24 px crops keeping at least half of the image), encoder
(``SmallCNN``) and probe (linear, 10 labels per class, weight decay chosen on val). For each it
prints the probe, the collapse monitors the method logs on its last 20 steps (``z_std``, the mean
per-dimension std of the normalised embedding, against 1/√D; ``z_rank``, its effective rank,
RankMe), and the seconds. A probe near the random init's with a small ``z_rank`` is the partial
dimensional collapse that "Understanding Collapse in Non-Contrastive Siamese Representation
Learning" (2022, arXiv 2209.15007) reports for models small relative to their data.

Run: ``.venv/bin/python benchmarks/negative_free_budget.py [steps] [seed]`` (default 500 steps,
seed 0; about 5 minutes on two quiet CPU cores).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import torch

import sslkit
from sslkit import data, evaluate, models, views
from sslkit.methods import BYOL, DINO, WMSE, BarlowTwins, SimCLR, SimSiam, VICReg
from sslkit.train import TrainConfig, fit

# name: (method class, constructor overrides, TrainConfig overrides)
SETTINGS = {
    "SimCLR (lecture 03)": (SimCLR, {}, {}),
    "BYOL, m = 0.99 cosine, lr 3e-3": (BYOL, {}, {}),
    "BYOL, lr 1e-3": (BYOL, {}, dict(lr=1e-3)),
    "SimSiam, AdamW lr 3e-3": (SimSiam, {}, {}),
    "SimSiam, the paper's SGD (lr 0.06, wd 5e-4)": (SimSiam, {}, dict(optimizer="sgd", lr=0.06,
                                                                     weight_decay=5e-4)),
    "DINO, K = 256, τ_t = 0.04, lr 3e-3": (DINO, {}, {}),
    "DINO, SwAV-like head (K = 100, D = 32, τ_s = 0.2), lr 1e-3": (
        DINO, dict(num_prototypes=100, bottleneck_dim=32, student_temperature=0.2),
        dict(lr=1e-3)),
    "VICReg (λ = μ = 25, ν = 1)": (VICReg, {}, {}),
    "Barlow Twins, D = 128, λ = 2e-3 (λD ≈ 1/4)": (BarlowTwins, dict(lambd=2e-3), {}),
    "Barlow Twins, D = 128, λ = 8e-3 (λD ≈ 1, lecture 07)": (BarlowTwins, dict(lambd=8e-3), {}),
    "Barlow Twins, D = 128, λ = 3.2e-2 (λD ≈ 4)": (BarlowTwins, dict(lambd=3.2e-2), {}),
    "Barlow Twins, D = 512, λ = 2e-3": (BarlowTwins, dict(proj_dim=512, lambd=2e-3), {}),
    "W-MSE, D = 32, lr 1e-3": (WMSE, {}, dict(lr=1e-3)),
}


def main(steps: int, seed: int) -> None:
    S = sslkit.sizes("03_contrastive_simclr", "quick")
    sslkit.setup(seed=seed, verbose=False)
    splits = data.shapeworld_splits(S.preset, n_unlabeled=S.n_unlabeled,
                                    labels_per_class=S.labels_per_class, n_val=S.n_val,
                                    n_test=S.n_test, image_size=S.image_size, seed=seed)
    x10, y10 = splits.labeled_subset(10)
    recipe = dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                                 crop_scale=S.crop_scale)

    def probe(encoder) -> float:
        f = [evaluate.extract_features(encoder, t) for t in (x10, splits.val_x, splits.test_x)]
        return evaluate.linear_probe(f[0], y10, f[2], splits.test_y, val_features=f[1],
                                     val_labels=splits.val_y).accuracy

    torch.manual_seed(seed)
    print(f"{steps} steps of {S.batch_size} images, seed {seed}; random init: probe "
          f"{probe(models.backbone(S.backbone)):.3f}")
    print(f"{'setting':58s} {'probe':>6s} {'z_std':>6s} {'1/√D':>6s} {'z_rank':>7s} {'s':>5s}")
    for name, (cls, overrides, train_overrides) in SETTINGS.items():
        torch.manual_seed(seed)
        method = cls(models.backbone(S.backbone), recipe=recipe, **overrides)
        config = TrainConfig(**{**dict(steps=steps, batch_size=S.batch_size, lr=S.lr, seed=seed),
                                **train_overrides})
        t0 = time.perf_counter()
        history = fit(method, splits.unlabeled, config=config, progress=False)
        seconds = time.perf_counter() - t0
        last = {k: sum(v[-20:]) / len(v[-20:]) for k, v in history.logs.items()}
        if "z_std" in last:
            dim = (method.head.prototypes.shape[1] if isinstance(method, DINO)
                   else method.projector.out_dim)
            monitors = f"{last['z_std']:6.3f} {dim ** -0.5:6.3f} {last['z_rank']:7.1f}"
        else:
            monitors = f"{'-':>6s} {'-':>6s} {'-':>7s}"
        print(f"{name:58s} {probe(method.backbone):6.3f} {monitors} {seconds:5.0f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500, int(sys.argv[2]) if len(sys.argv) > 2
         else 0)
