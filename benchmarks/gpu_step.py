"""SimCLR training throughput: sslkit's batched views on the device against a per-sample
torchvision pipeline in DataLoader workers, same model, loss and optimiser, side by side.

The usual way to feed a contrastive model (lightly's and solo-learn's) augments each image on
the CPU in DataLoader worker processes and copies the batch to the GPU; at 32 px the GPU then
waits for the CPU. ``sslkit.train.fit`` keeps the uint8 pool on the device and draws the views
there for the whole batch at once (``sslkit.views.two_views``). Both paths here train the same
CIFAR ResNet-18 + 2048 → 128 projector with NT-Xent (τ = 0.2) and AdamW, bf16 autocast on CUDA,
on ShapeWorld ``hard`` at 32 px, batch 512; the view distributions match (random resized crop
0.2-1, flip, colour jitter 0.8 with probability 0.8, greyscale 0.2):

- ``sslkit fit``: ``fit(SimCLR(...), pool)``, its own images/s (``History``);
- ``sslkit views, manual loop``: the loop below with views from ``views.two_views`` on the device
  (the same work as ``fit``, timed like the worker path);
- ``torchvision v2, N workers``: ``torchvision.transforms.v2`` per sample in a ``Dataset``,
  ``DataLoader(num_workers=N, pin_memory=True, persistent_workers=True)``, views copied to the
  device with ``non_blocking=True``.

Then the time each path needs to reach a fixed weighted-kNN accuracy on the test split (features
of the backbone; evaluation time excluded), up to a step limit. It prints images/s, the ratio of
sslkit's to each worker setting, and the seconds to the kNN target.

Run on a GPU: ``python benchmarks/gpu_step.py`` (about 3 minutes on one H100). ``--smoke`` runs
every path for a few steps of a tiny batch on the CPU (no claim about speed; it keeps the script
working in CI).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from contextlib import nullcontext

import torch

import sslkit
from sslkit import data, evaluate, losses, models, views
from sslkit.methods import SimCLR
from sslkit.train import TrainConfig, fit

FULL = dict(batch=512, steps=50, warmup=10, pool=50_000, workers=(8, 16), knn_target=0.30,
            knn_every=100, knn_max_steps=3_000, n_test=2_000, lr=2e-3)
SMOKE = dict(batch=16, steps=2, warmup=1, pool=256, workers=(0, 2), knn_target=0.0,
             knn_every=2, knn_max_steps=4, n_test=100, lr=2e-3)


def _model(device):
    torch.manual_seed(0)
    method = SimCLR(models.backbone("resnet18"), proj_hidden=2048, proj_dim=128,
                    temperature=0.2, recipe=_recipe()).to(device)
    return method.to(memory_format=torch.channels_last)


def _recipe():
    return dataclasses.replace(views.simclr_recipe(32, colour="standard"), crop_scale=(0.2, 1.0))


class _TorchvisionViews(torch.utils.data.Dataset):
    """Two torchvision-v2 views of one uint8 image ``(3, 32, 32)`` per item, on the CPU."""

    def __init__(self, images: torch.Tensor):
        from torchvision.transforms import v2

        r = _recipe()
        self.images = images
        self.transform = v2.Compose([
            v2.RandomResizedCrop(32, scale=r.crop_scale, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(r.brightness, r.contrast, r.saturation, r.hue)],
                           p=r.jitter_p),
            v2.RandomGrayscale(p=r.grayscale_p),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(views.MEAN, views.STD),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i]
        return self.transform(x), self.transform(x)


def _step(method, optimizer, v1, v2, amp):
    with amp():
        z = method.projector(method.backbone(torch.cat([v1, v2]).contiguous(
            memory_format=torch.channels_last)))
        loss = losses.nt_xent(*z.float().chunk(2), temperature=method.temperature)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _view_batches(pool: torch.Tensor, batch: int, device, workers: int | None):
    """An endless iterator of (v1, v2) on ``device``: sslkit's views (``workers=None``) or a
    DataLoader with ``workers`` processes."""
    if workers is None:
        recipe, gen = _recipe(), torch.Generator(device).manual_seed(0)
        while True:
            idx = torch.randint(len(pool), (batch,), device=device, generator=gen)
            yield views.two_views(pool[idx], recipe, generator=gen)
    loader = torch.utils.data.DataLoader(
        _TorchvisionViews(pool.cpu()), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda",
        persistent_workers=workers > 0)
    while True:
        for v1, v2 in loader:
            yield v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _throughput(batches, method, optimizer, amp, cfg, device) -> float:
    for _ in range(cfg["warmup"]):
        _step(method, optimizer, *next(batches), amp)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(cfg["steps"]):
        _step(method, optimizer, *next(batches), amp)
    _sync(device)
    return cfg["steps"] * cfg["batch"] / (time.perf_counter() - t0)


def _time_to_knn(batches, method, optimizer, amp, cfg, device, splits) -> tuple[float, int]:
    """Training seconds (evaluation excluded) until the kNN accuracy reaches the target, and
    the step; ``(inf, max_steps)`` if it never does."""
    knn_x, knn_y = splits.train_x, splits.train_y
    seconds = 0.0
    for step in range(1, cfg["knn_max_steps"] + 1):
        _sync(device)
        t0 = time.perf_counter()
        _step(method, optimizer, *next(batches), amp)
        _sync(device)
        seconds += time.perf_counter() - t0
        if step % cfg["knn_every"] == 0:
            train_f = evaluate.extract_features(method.backbone, knn_x)
            test_f = evaluate.extract_features(method.backbone, splits.test_x)
            if evaluate.knn_accuracy(train_f, knn_y, test_f, splits.test_y) >= cfg["knn_target"]:
                return seconds, step
            method.train()
    return float("inf"), cfg["knn_max_steps"]


def main(smoke: bool) -> None:
    cfg = SMOKE if smoke else FULL
    device = torch.device("cpu") if smoke else sslkit.device()
    if device.type != "cuda" and not smoke:
        raise SystemExit("gpu_step.py measures a GPU and found none; run with --smoke to check "
                         "the script on the CPU")
    amp = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda"
           else nullcontext)
    splits = data.shapeworld_splits("hard", n_unlabeled=cfg["pool"], labels_per_class=10,
                                    n_val=10, n_test=cfg["n_test"], image_size=32,
                                    seed=0).to(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (smoke: no claim)"
    print(f"{name} | SimCLR, ResNet-18, 32 px, batch {cfg['batch']} | "
          f"{cfg['steps']} timed steps after {cfg['warmup']}")

    method = _model(device)
    history = fit(method, splits.unlabeled, config=TrainConfig(
        steps=cfg["warmup"] + cfg["steps"], batch_size=cfg["batch"], lr=cfg["lr"]),
        progress=False)
    rows = {"sslkit fit": (cfg["warmup"] + cfg["steps"]) * cfg["batch"] / history.seconds}
    paths = {"sslkit views, manual loop": None, **{f"torchvision v2, {w} workers": w
                                                   for w in cfg["workers"]}}
    for label, workers in paths.items():
        method = _model(device)
        optimizer = torch.optim.AdamW(method.parameters(), lr=cfg["lr"])
        batches = _view_batches(splits.unlabeled, cfg["batch"], device, workers)
        rows[label] = _throughput(batches, method, optimizer, amp, cfg, device)
    ours = rows["sslkit views, manual loop"]
    print(f"{'path':32s} {'images/s':>10s} {'sslkit / this':>14s}")
    for label, ips in rows.items():
        print(f"{label:32s} {ips:10,.0f} {ours / ips:14.2f}")
    for w in cfg["workers"]:
        print(f"sslkit_over_workers_{w} {ours / rows[f'torchvision v2, {w} workers']:.2f}")

    print(f"time to kNN accuracy {cfg['knn_target']:.2f} (test split, training time only):")
    for label, workers in (("sslkit views", None), (f"torchvision v2, {cfg['workers'][-1]} "
                                                    "workers", cfg["workers"][-1])):
        method = _model(device)
        optimizer = torch.optim.AdamW(method.parameters(), lr=cfg["lr"])
        batches = _view_batches(splits.unlabeled, cfg["batch"], device, workers)
        seconds, step = _time_to_knn(batches, method, optimizer, amp, cfg, device, splits)
        print(f"  {label:32s} {seconds:8.1f} s ({step} steps)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a few tiny steps of every path on the CPU (keeps the script working)")
    main(parser.parse_args().smoke)
