"""How much does lecture 04's short MoCo run depend on the seed, next to SimCLR's?

Lecture 04 compares MoCo (batch 32, 4x the steps, queue 512) with SimCLR (batch 128) on the same
images in the ``quick`` profile. This script repeats both runs with the lecture's data, views,
encoder and probe for ``SSLKIT_SEED`` = 0, 1, 2 (data, initialisation and views shifted
together), and MoCo also with the variants one might try first: momentum 0.9, a larger learning
rate, and Shuffle BN emulated with two BatchNorm groups. It prints the linear-probe accuracy with
10 and 100 labels per class and the loss over the last 20 steps.

Run: ``.venv/bin/python benchmarks/moco_seeds.py`` (about 8 minutes on two quiet CPU cores).
"""

from __future__ import annotations

import dataclasses
import os

import torch

import sslkit
from sslkit import data, evaluate, models, views
from sslkit.methods import MoCo, SimCLR
from sslkit.train import TrainConfig, fit

VARIANTS = {"SimCLR, batch 128": None, "MoCo (lecture)": {},
            "MoCo, momentum 0.9": {"momentum": 0.9}, "MoCo, lr 3e-3": {"lr": 3e-3},
            "MoCo, 2 BN groups": {"bn_splits": 2}}


def one_seed(seed: int) -> dict[str, tuple[float, float, float]]:
    os.environ["SSLKIT_SEED"] = str(seed)
    S = sslkit.sizes("04_contrastive_moco_supcon", "quick")
    sslkit.setup(seed=S.seed, verbose=False)
    splits = data.shapeworld_splits(S.preset, n_unlabeled=S.n_unlabeled,
                                    labels_per_class=S.labels_per_class, n_val=S.n_val,
                                    n_test=S.n_test, image_size=S.image_size, seed=S.seed)
    x10, y10 = splits.labeled_subset(10)
    recipe = dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                                 crop_scale=S.crop_scale)

    def probe(encoder, x, y):
        f = [evaluate.extract_features(encoder, t) for t in (x, splits.val_x, splits.test_x)]
        return evaluate.linear_probe(f[0], y, f[2], splits.test_y, val_features=f[1],
                                     val_labels=splits.val_y).accuracy

    out = {}
    for name, change in VARIANTS.items():
        torch.manual_seed(S.seed)
        common = dict(proj_hidden=S.proj_hidden, proj_dim=S.proj_dim,
                      temperature=S.temperature, recipe=recipe)
        if change is None:
            method = SimCLR(models.backbone(S.backbone), **common)
            config = TrainConfig(steps=S.simclr_steps, batch_size=S.batch_size, lr=S.lr,
                                 seed=S.seed)
        else:
            method = MoCo(models.backbone(S.backbone), queue_size=S.queue_size,
                          momentum=change.get("momentum", S.momentum),
                          bn_splits=change.get("bn_splits", 1), **common)
            config = TrainConfig(steps=4 * S.simclr_steps, batch_size=S.batch_size // 4,
                                 lr=change.get("lr", S.moco_lr), seed=S.seed)
        history = fit(method, splits.unlabeled, config=config, progress=False)
        out[name] = (probe(method.backbone, x10, y10),
                     probe(method.backbone, splits.train_x, splits.train_y),
                     sum(history.loss[-20:]) / 20)
    return out


def main() -> None:
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'seed':>4}  {'run':<20} {'probe 10/class':>14} {'probe 100/class':>15} "
          f"{'loss, last 20':>13}")
    for seed in (0, 1, 2):
        for name, (p10, p100, loss) in one_seed(seed).items():
            print(f"{seed:>4}  {name:<20} {p10:>14.3f} {p100:>15.3f} {loss:>13.3f}")


if __name__ == "__main__":
    main()
