"""The GPU check: every lecture's main training runs at the ``full`` profile's sizes, timed, each
encoder probed; the numbers go to ``<out>/results.json`` and one printed table.

A lecture's ``full`` notebook trains for tens of thousands of steps, longer than a lab's GPU
session allows, so the check runs each lecture's main training cells as a script: the methods,
data and settings of ``sslkit.sizes(<lecture>, "full")``, each run capped at ``--max-steps``.
The table gives the seconds per step, so a full run's time is its step count (also printed)
times that. The data are each lecture's ``data.lecture_splits``: ShapeWorld, or CIFAR-10 /
STL-10 with ``SSLKIT_DATASET`` (files under ``SSLKIT_DATA``, nothing is downloaded).
``--smoke`` runs every one of them for two steps of eight images on whatever device there is
(CI does, on a CPU): a wrong size, name or shape in the ``full`` profile fails there, not in a
lab. It needs torch and torchvision only (no Jupyter packages, no SciPy).

    python -m sslkit.gpu_check [--smoke] [--lectures 03,07] [--max-steps 1000] [--out build/gpu]

Each run: ``fit`` with the lecture's method, data, batch size and learning rate for
``min(steps, max_steps)`` steps, then a linear probe of its backbone with 10 labels per class
(model selection on val, accuracy on test; an encoder trained for a capped run is not the
lecture's, so read the probe as a sanity check, not a result).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data, evaluate, models, profiles, views
from .methods import (
    BYOL,
    DINO,
    MAE,
    SCAN,
    SLA,
    WMSE,
    BarlowTwins,
    DeepCluster,
    Jigsaw,
    MoCo,
    OBoW,
    PositionPrediction,
    RotNet,
    SeLa,
    SimCLR,
    SimSiam,
    SupCon,
    Supervised,
    SwAV,
    VICReg,
    mine_neighbours,
)
from .train import TrainConfig, fit

__all__ = ["Run", "lecture_runs", "LECTURES", "run", "main"]


@dataclass
class Run:
    """One training run of a lecture: ``make()`` builds the method; it trains on ``images``
    (and ``labels`` for supervised methods) for ``steps`` steps of ``batch_size`` at ``lr``.
    ``min_batch``: the smallest batch the method accepts (W-MSE whitens a batch: more rows than
    dimensions)."""

    name: str
    make: Callable[[], torch.nn.Module]
    images: torch.Tensor
    labels: torch.Tensor | None
    steps: int
    batch_size: int
    lr: float
    min_batch: int = 2


def _recipe(S):
    return dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                               crop_scale=S.crop_scale)


def _runs_00(S, splits):
    return [Run("supervised, all labels", lambda: Supervised(models.backbone(S.backbone),
                                                             splits.num_classes),
                splits.train_x, splits.train_y, S.supervised_steps, 128, S.supervised_lr)]


def _runs_02(S, splits):
    x, y, k = splits.train_x, splits.train_y, splits.num_classes
    return [
        Run("RotNet", lambda: RotNet(models.backbone(S.backbone)), splits.unlabeled, None,
            S.rotnet_steps, S.rotnet_batch_size, S.rotnet_lr),
        Run("Jigsaw", lambda: Jigsaw(models.backbone(S.backbone), grid=2, jitter=S.jigsaw_jitter),
            splits.unlabeled, None, S.jigsaw_steps, S.jigsaw_batch_size, S.jigsaw_lr),
        Run("position prediction", lambda: PositionPrediction(
            models.backbone("vit_tiny_nopos", image_size=S.image_size, **S.vit),
            mask_ratio=S.position_mask_ratio), splits.unlabeled, None, S.position_steps,
            S.position_batch_size, S.position_lr),
        Run("SLA, joint labels", lambda: SLA(models.backbone(S.backbone), k, joint=True), x, y,
            S.sla_steps, S.sla_batch_size, S.sla_lr),
        Run("SLA, rotation as augmentation", lambda: SLA(models.backbone(S.backbone), k,
                                                         joint=False),
            x, y, S.sla_steps, S.sla_batch_size, S.sla_lr),
    ]


def _runs_03(S, splits):
    return [
        Run("SimCLR", lambda: SimCLR(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                                     proj_dim=S.proj_dim, temperature=S.temperature,
                                     recipe=_recipe(S)),
            splits.unlabeled, None, S.steps, S.batch_size, S.lr),
        Run("supervised, SimCLR's views", lambda: Supervised(
            models.backbone(S.backbone), splits.num_classes, recipe=_recipe(S)),
            splits.train_x, splits.train_y, S.steps, S.batch_size, S.supervised_lr),
    ]


def _runs_04(S, splits):
    # MoCo at a quarter of SimCLR's batch for four times the steps, as the lecture runs it
    return [
        Run("MoCo", lambda: MoCo(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                                 proj_dim=S.proj_dim, temperature=S.temperature,
                                 queue_size=S.queue_size, momentum=S.momentum,
                                 recipe=_recipe(S)),
            splits.unlabeled, None, 4 * S.simclr_steps, S.batch_size // 4, S.moco_lr),
        Run("SupCon", lambda: SupCon(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                                     proj_dim=S.proj_dim, temperature=S.supcon_temperature,
                                     recipe=_recipe(S)),
            splits.train_x, splits.train_y, S.supcon_steps, S.batch_size, S.lr),
    ]


def _runs_05(S, splits):
    pool = splits.unlabeled
    dc_pool, sela_pool = min(S.dc_pool, len(pool)), min(S.sela_pool, len(pool))
    neighbours = mine_neighbours(evaluate.extract_features(models.backbone(S.backbone), pool),
                                 S.scan_neighbours)          # the lecture mines SimCLR's
    return [
        Run("DeepCluster", lambda: DeepCluster(models.backbone(S.backbone), pool_size=dc_pool,
                                               num_clusters=S.dc_clusters, recipe=_recipe(S)),
            pool[:dc_pool], None, S.dc_steps, S.batch_size, S.lr),
        Run("SeLa", lambda: SeLa(models.backbone(S.backbone), pool_size=sela_pool,
                                 num_clusters=S.sela_clusters, epsilon=S.sela_epsilon,
                                 recipe=_recipe(S)),
            pool[:sela_pool], None, S.sela_steps, S.batch_size, S.lr),
        Run("SwAV", lambda: SwAV(models.backbone(S.backbone), num_prototypes=S.num_prototypes,
                                 proj_hidden=S.proj_hidden, proj_dim=S.proj_dim,
                                 temperature=S.swav_temperature, epsilon=S.epsilon,
                                 sinkhorn_iters=S.sinkhorn_iters, n_local=S.n_local,
                                 recipe=_recipe(S), local_size=S.local_size,
                                 local_scale=S.local_scale,
                                 freeze_prototypes_steps=S.freeze_prototypes_steps),
            pool, None, S.swav_steps, S.batch_size, S.lr),
        Run("SCAN", lambda: SCAN(models.backbone(S.backbone), neighbours,
                                 num_clusters=splits.num_classes,
                                 entropy_weight=S.scan_entropy_weight, recipe=_recipe(S)),
            pool, None, S.scan_steps, S.scan_batch_size, S.scan_lr),
        Run("OBoW", lambda: OBoW(models.backbone(S.backbone), num_words=S.obow_words,
                                 momentum=S.obow_momentum, recipe=_recipe(S)),
            pool, None, S.obow_steps, S.batch_size, S.lr),
    ]


def _runs_06(S, splits):
    def dino(**kw):
        return lambda: DINO(models.backbone(S.backbone), **{**dict(
            num_prototypes=S.num_prototypes, student_temperature=S.student_temperature,
            teacher_temperature=S.teacher_temperature, center_momentum=S.center_momentum,
            momentum=S.momentum, n_local=S.n_local, local_size=S.local_size,
            recipe=_recipe(S)), **kw})

    def simsiam(stop_gradient=True):
        return lambda: SimSiam(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                               proj_dim=S.proj_dim, pred_hidden=S.simsiam_pred_hidden,
                               stop_gradient=stop_gradient, recipe=_recipe(S))

    pool = splits.unlabeled
    return [
        Run("BYOL", lambda: BYOL(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                                 proj_dim=S.proj_dim, pred_hidden=S.pred_hidden,
                                 momentum=S.momentum, recipe=_recipe(S)),
            pool, None, S.steps, S.batch_size, S.lr),
        Run("SimSiam", simsiam(), pool, None, S.steps, S.batch_size, S.lr),
        Run("DINO", dino(), pool, None, S.steps, S.batch_size, S.lr),
        Run("SimSiam, no stop-gradient", simsiam(False), pool, None, S.ablation_steps,
            S.batch_size, S.lr),
        Run("DINO, no centring", dino(centering=False), pool, None, S.ablation_steps,
            S.batch_size, S.lr),
    ]


def _runs_07(S, splits):
    def vicreg(**weights):
        return lambda: VICReg(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                              proj_dim=S.proj_dim, recipe=_recipe(S), **weights)

    def barlow(lambd):
        return lambda: BarlowTwins(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                                   proj_dim=S.proj_dim, lambd=lambd, recipe=_recipe(S))

    pool = splits.unlabeled
    return [
        Run("Barlow Twins", barlow(S.barlow_lambda), pool, None, S.steps, S.batch_size, S.lr),
        Run("VICReg", vicreg(), pool, None, S.steps, S.batch_size, S.lr),
        Run("VICReg, no variance term", vicreg(var_weight=0.0), pool, None, S.ablation_steps,
            S.batch_size, S.lr),
        Run("VICReg, no covariance term", vicreg(cov_weight=0.0), pool, None, S.ablation_steps,
            S.batch_size, S.lr),
        Run("Barlow Twins, λ = 0", barlow(0.0), pool, None, S.ablation_steps, S.batch_size,
            S.lr),
        Run("W-MSE", lambda: WMSE(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                                  proj_dim=S.wmse_dim, recipe=_recipe(S)),
            pool, None, S.steps, S.batch_size, S.wmse_lr, min_batch=S.wmse_dim + 1),
    ]


def _runs_08(S, splits):
    def vit():
        return models.backbone("vit_tiny", image_size=S.image_size, **S.vit)

    def mae(**kw):
        return lambda: MAE(vit(), mask_ratio=S.mask_ratio, decoder_dim=S.decoder_dim,
                           decoder_depth=S.decoder_depth, **{"target": S.target, **kw})

    colour = dataclasses.replace(views.simclr_recipe(S.image_size, colour="strong"),
                                 crop_scale=S.crop_scale)
    pool = splits.unlabeled
    return [
        Run("MAE", mae(), pool, None, S.steps, S.batch_size, S.lr),
        Run("MAE, teacher targets", mae(target="teacher"), pool, None, S.steps, S.batch_size,
            S.lr),
        Run("MAE, two scales", mae(multiscale=True), pool, None, S.steps, S.batch_size, S.lr),
        Run("SimCLR (ViT)", lambda: SimCLR(vit(), proj_hidden=S.proj_hidden,
                                           proj_dim=S.proj_dim, temperature=S.temperature,
                                           recipe=colour),
            pool, None, S.contrastive_steps, S.batch_size, S.lr),
    ]


# The lectures with training runs (lecture 01 trains closed-form models in seconds).
LECTURES: dict[str, Callable] = {
    "00_tour_and_protocol": _runs_00, "02_pretext_tasks": _runs_02,
    "03_contrastive_simclr": _runs_03, "04_contrastive_moco_supcon": _runs_04,
    "05_clustering": _runs_05, "06_self_distillation": _runs_06,
    "07_redundancy_reduction": _runs_07,
    "08_masked_modeling": _runs_08,
}


def lecture_runs(stem: str, *, smoke: bool = False, device=None) -> tuple[list[Run], object]:
    """The runs of lecture ``stem`` at its ``full`` sizes, and the splits they probe on.

    ``smoke``: the same methods and settings on a pool of 128 images (more than every method's
    cluster and neighbour counts) with 2 labels per class."""
    S = profiles.sizes(stem, "full")
    device = device or profiles.device()
    small = dict(n_unlabeled=128, labels_per_class=2, n_val=20, n_test=20) if smoke else {}
    splits = data.lecture_splits(S, device=device, **small)
    return LECTURES[stem](S, splits), splits


def run(r: Run, splits, *, max_steps: int | None, smoke: bool, device) -> dict:
    """Train one run (capped) and probe its backbone; seconds, steps and the probe."""
    torch.manual_seed(0)
    method = r.make().to(device)
    steps = 2 if smoke else min(r.steps, max_steps or r.steps)
    batch = max(8, r.min_batch) if smoke else r.batch_size
    history = fit(method, r.images, r.labels, progress=False,
                  config=TrainConfig(steps=steps, batch_size=batch, lr=r.lr))
    per_class = min(10, len(splits.train_y) // splits.num_classes)
    x, y = splits.labeled_subset(per_class)
    f = [evaluate.extract_features(method.backbone, t) for t in (x, splits.val_x, splits.test_x)]
    acc = evaluate.linear_probe(f[0], y, f[2], splits.test_y, val_features=f[1],
                                val_labels=splits.val_y).accuracy
    return {"steps": steps, "full_steps": r.steps, "seconds": history.seconds,
            "seconds_per_step": history.seconds / steps, "final_loss": history.loss[-1],
            "probe_acc_10pc": acc}


def format_table(results: dict) -> str:
    """One line per run: lecture, its data, run, steps timed, s/step, minutes for the full step
    count, probe; a run that failed shows its error instead."""
    lines = [f"{'lecture':28s} {'data':16s} {'run':28s} {'steps':>6s} {'s/step':>8s} "
             f"{'full min':>9s} {'probe':>6s}"]
    for stem, runs in results["lectures"].items():
        head = f"{stem:28s} {results['data'][stem]:16s}"
        for name, r in runs.items():
            if "error" in r:
                lines.append(f"{head} {name:28s} FAILED: {r['error']}")
                continue
            lines.append(f"{head} {name:28s} {r['steps']:6d} {r['seconds_per_step']:8.4f} "
                         f"{r['seconds_per_step'] * r['full_steps'] / 60:9.1f} "
                         f"{r['probe_acc_10pc']:6.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the lectures' main training runs, write results.json, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="two steps of eight images per run (checks the full sizes on CPU)")
    parser.add_argument("--lectures", default="",
                        help="comma-separated lecture numbers or stems (default: all)")
    parser.add_argument("--max-steps", type=int, default=1000,
                        help="cap on every run's steps (default 1000)")
    parser.add_argument("--out", default="build/gpu", help="output folder (default build/gpu)")
    args = parser.parse_args(argv)
    if args.max_steps < 1:
        parser.error(f"--max-steps must be at least 1, got {args.max_steps}")
    wanted = [w for w in args.lectures.split(",") if w]
    stems = [s for s in LECTURES if not wanted or any(s.startswith(w) for w in wanted)]
    if not stems:
        print(f"no lecture matches --lectures {args.lectures!r}; known: {', '.join(LECTURES)}",
              file=sys.stderr)
        return 2
    device = profiles.device()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    results = {"device": name, "smoke": args.smoke, "max_steps": args.max_steps,
               "data": {}, "lectures": {}}
    t0 = time.perf_counter()
    for stem in stems:
        runs, splits = lecture_runs(stem, smoke=args.smoke, device=device)
        results["data"][stem] = splits.name
        results["lectures"][stem] = {}
        for r in runs:
            try:   # one failed run (a NaN loss, memory) must not lose the others' numbers
                out = run(r, splits, max_steps=args.max_steps, smoke=args.smoke, device=device)
                print(f"{stem} | {r.name}: {out['seconds']:.1f} s", flush=True)
            except Exception as err:
                out = {"error": f"{type(err).__name__}: {err}"}
                print(f"{stem} | {r.name}: FAILED, {out['error']}", flush=True)
            results["lectures"][stem][r.name] = out
    results["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n{name}{' (smoke: no claim about speed)' if args.smoke else ''}, "
          f"{results['seconds']:.0f} s in all")
    print(format_table(results))
    print(f"\nwrote {out / 'results.json'}")
    failed = any("error" in r for runs in results["lectures"].values() for r in runs.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
