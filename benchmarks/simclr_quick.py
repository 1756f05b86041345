"""SimCLR in the ``quick`` profile against its two baselines, side by side (issue 5's bars).

What it measures, on ShapeWorld 32×32 (one seed, one run: 85 s
on one CPU thread of a shared 2-core machine):

- ``simclr_probe_acc_10pc`` / ``simclr_probe_acc_100pc``: test accuracy of a linear probe
  (:func:`sslkit.evaluate.linear_probe`, weight decay chosen on the val split) on the frozen
  backbone features of a SmallCNN pretrained with SimCLR on the unlabeled split, with 10 and 100
  labels per class;
- ``random_init_probe_acc_10pc``: the same probe on a randomly initialised SmallCNN;
- ``supervised_scratch_acc_10pc``: a SmallCNN + linear head trained from scratch with
  cross-entropy on the same 100 labels (:class:`sslkit.methods.Supervised`), for the same number
  of steps as SimCLR; its own head's test accuracy (the approach of
  :func:`sslkit.evaluate.report_card`).

The issue's bars: SimCLR 10pc >= supervised 10pc + 0.10 and >= random init 10pc + 0.20; SimCLR
100pc >= 0.50. The defaults are the best configuration of a 60 s-per-run tuning study on the
``standard`` preset (SmallCNN 16-32-64-128, strong colour, batch 128, lr 3e-3, tau 0.2,
projector 512 -> 128, crop scale 0.5-1). Measured with this script (seed 0; 10pc / 100pc probe,
then supervised 10pc and random init 10pc; numbers printed, never asserted):

- ``--steps 500`` (standard, 32 px views): 0.271 / 0.451, 0.172, 0.131 (bars not met)
- ``--steps 800`` (standard, 32 px views): 0.278 / 0.473, 0.170, 0.131 (bars not met)
- ``--steps 800 --preset easy``: 0.557 / 0.848, 0.203, 0.191
- ``--steps 500 --preset easy --view-size 24``: 0.489 / 0.711, 0.196, 0.191 — the setting of
  lecture 03 (24 px views cost 0.56x the pixels of 32 px ones; the probe sees 32 px images).

Run: ``.venv/bin/python benchmarks/simclr_quick.py [--threads 2] [--steps N] [--seed 0]
[--preset easy] [--view-size 24] [--temperature 0.2] [--batch-size 128] [--crop-min 0.5]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch
from torch import nn

from sslkit import data, views
from sslkit.evaluate import extract_features, linear_probe
from sslkit.methods import SimCLR, Supervised
from sslkit.models import SmallCNN
from sslkit.train import TrainConfig, fit

# The best configuration of the tuning study (see the module docstring).
CONFIG = dict(
    preset="standard", n_unlabeled=10_000, widths=(16, 32, 64, 128), batch_size=128, lr=3e-3,
    weight_decay=1e-4, warmup=0.05, temperature=0.2, proj_hidden=512, proj_dim=128,
    crop_scale=(0.5, 1.0), colour_strength=1.0, steps=500,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default=CONFIG["preset"], choices=("easy", "standard", "hard"))
    parser.add_argument("--image-size", type=int, default=32, choices=(24, 32, 64))
    parser.add_argument("--view-size", type=int, default=None,
                        help="side of the views (default: the image size); probes use full images")
    parser.add_argument("--temperature", type=float, default=CONFIG["temperature"])
    parser.add_argument("--batch-size", type=int, default=CONFIG["batch_size"])
    parser.add_argument("--crop-min", type=float, default=CONFIG["crop_scale"][0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("SSLKIT_PROGRESS", "0")
    c = CONFIG

    t0 = time.perf_counter()
    splits = data.shapeworld_splits(args.preset, n_unlabeled=c["n_unlabeled"],
                                    image_size=args.image_size, seed=0)
    x10, y10 = splits.labeled_subset(10)
    print(f"data: {splits.name}, unlabeled {tuple(splits.unlabeled.shape)}, "
          f"rendered in {time.perf_counter() - t0:.1f} s; torch threads {torch.get_num_threads()}")

    def probe(encoder: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        feats = [extract_features(encoder, a) for a in (x, splits.val_x, splits.test_x)]
        return linear_probe(feats[0], y, feats[2], splits.test_y, val_features=feats[1],
                            val_labels=splits.val_y).accuracy

    torch.manual_seed(args.seed)
    recipe = dataclasses.replace(
        views.simclr_recipe(args.view_size or splits.image_size, strength=c["colour_strength"],
                            colour="strong"),
        crop_scale=(args.crop_min, 1.0))
    simclr = SimCLR(SmallCNN(c["widths"]), proj_hidden=c["proj_hidden"], proj_dim=c["proj_dim"],
                    temperature=args.temperature, recipe=recipe)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=c["lr"],
                         weight_decay=c["weight_decay"], warmup=c["warmup"], seed=args.seed)
    history = fit(simclr, splits.unlabeled, config=config, progress=False)
    print(f"SimCLR: {history.summary()}")
    simclr_10 = probe(simclr.backbone, x10, y10)
    simclr_100 = probe(simclr.backbone, splits.train_x, splits.train_y)

    torch.manual_seed(args.seed)
    random_10 = probe(SmallCNN(c["widths"]), x10, y10)

    torch.manual_seed(args.seed)
    supervised = Supervised(SmallCNN(c["widths"]), splits.num_classes)
    sup_history = fit(supervised, x10, y10, TrainConfig(steps=args.steps, lr=5e-3, seed=args.seed,
                                                        batch_size=len(y10)), progress=False)
    print(f"Supervised (100 labels): {sup_history.summary()}")
    logits = extract_features(nn.Sequential(supervised.backbone, supervised.classifier),
                              splits.test_x)
    scratch_10 = (logits.argmax(1).cpu() == splits.test_y.cpu()).float().mean().item()

    print(f"\n{'encoder':34s} {'10/class':>9s} {'100/class':>10s}")
    print(f"{'SimCLR (linear probe)':34s} {simclr_10:9.3f} {simclr_100:10.3f}")
    print(f"{'supervised from scratch (own head)':34s} {scratch_10:9.3f} {'':>10s}")
    print(f"{'random init (linear probe)':34s} {random_10:9.3f} {'':>10s}")
    print(f"bars: SimCLR - supervised = {simclr_10 - scratch_10:+.3f} (need >= +0.10), "
          f"SimCLR - random = {simclr_10 - random_10:+.3f} (need >= +0.20), "
          f"SimCLR 100/class = {simclr_100:.3f} (need >= 0.50)")
    print(f"simclr_probe_acc_10pc {simclr_10:.4f}")
    print(f"simclr_probe_acc_100pc {simclr_100:.4f}")
    print(f"supervised_scratch_acc_10pc {scratch_10:.4f}")
    print(f"random_init_probe_acc_10pc {random_10:.4f}")


if __name__ == "__main__":
    main()
