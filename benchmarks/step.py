"""How fast is one SimCLR training step on this CPU, and what would make it faster?

The step of lectures 03-05 (``quick``): 128 images → two 24 px views each, the small CNN, the
512 → 128 projector, NT-Xent, AdamW. Each variant runs the same step on the same batch, side by
side in one process, and prints milliseconds per step and images per second:

- ``fp32``: what ``sslkit.train.fit`` does on CPU today (float32, AdamW's default foreach path);
- ``bf16 autocast``: forward and loss under ``torch.autocast("cpu", dtype=torch.bfloat16)``
  (losses already compute their logits in float32); pays only on CPUs with native bf16
  arithmetic (AVX-512 BF16 or AMX), which the script reports;
- ``fused AdamW``: ``torch.optim.AdamW(fused=True)`` instead of the foreach path;
- ``torch.compile``: the backbone and projector compiled (compile time printed apart);
- ``1 thread``: the fp32 step with one thread, against the default of one per core.

It ends with ``cpu_step_speedup X``: the fastest variant's images/s over ``fp32``'s. Speed is
measured here, never asserted in a test; run it on a quiet machine (another torch process on
the same cores slows both several-fold).

Run: ``.venv/bin/python benchmarks/step.py [steps] [--no-compile]`` (default 30 timed steps per
variant after 5 warm-up steps; about a minute without compile, plus ~30 s of compilation).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import nullcontext

import torch

import sslkit
from sslkit import data, models, views
from sslkit.methods import SimCLR
from sslkit.train import cpu_has_native_bf16


def _time_steps(method, images, optimizer, steps, autocast=False, warmup=5) -> float:
    """Seconds per step of ``steps`` training steps after ``warmup`` untimed ones."""
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else nullcontext
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        with ctx():
            loss, _ = method.training_step(images)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - t0) / steps


def main(steps: int, compile_: bool) -> None:
    S = sslkit.sizes("03_contrastive_simclr", "quick")
    sslkit.setup(seed=0, verbose=False)
    images = data.shapeworld_splits(S.preset, n_unlabeled=S.batch_size, labels_per_class=1,
                                    n_val=10, n_test=10, image_size=S.image_size,
                                    seed=0).unlabeled                    # (128, 3, 32, 32)
    recipe = dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                                 crop_scale=S.crop_scale)

    def fresh():
        torch.manual_seed(0)
        return SimCLR(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                      proj_dim=S.proj_dim, temperature=S.temperature, recipe=recipe)

    def adamw(method, **kw):
        return torch.optim.AdamW(method.parameters(), lr=S.lr, weight_decay=1e-4, **kw)

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, native bf16: {cpu_has_native_bf16()}; "
          f"batch {S.batch_size} x 2 views of {S.view_size} px, {steps} timed steps per variant")
    results = {}
    m = fresh()
    results["fp32"] = _time_steps(m, images, adamw(m), steps)
    m = fresh()
    results["bf16 autocast"] = _time_steps(m, images, adamw(m), steps, autocast=True)
    m = fresh()
    results["fused AdamW"] = _time_steps(m, images, adamw(m, fused=True), steps)
    if compile_:
        m = fresh()
        m.backbone, m.projector = torch.compile(m.backbone), torch.compile(m.projector)
        t0 = time.perf_counter()
        _time_steps(m, images, adamw(m), 1, warmup=0)
        print(f"torch.compile: first step (compilation) {time.perf_counter() - t0:.1f} s")
        results["torch.compile"] = _time_steps(m, images, adamw(m), steps)
    torch.set_num_threads(1)
    m = fresh()
    results["fp32, 1 thread"] = _time_steps(m, images, adamw(m), steps)
    torch.set_num_threads(threads)

    base = results["fp32"]
    print(f"{'variant':18s} {'ms/step':>8s} {'images/s':>9s} {'vs fp32':>8s}")
    for name, sec in results.items():
        print(f"{name:18s} {1e3 * sec:8.1f} {S.batch_size / sec:9.0f} {base / sec:7.2f}x")
    best = min(results, key=results.get)
    print(f"fastest: {best}")
    print(f"cpu_step_speedup {base / results[best]:.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 30, "--no-compile" not in sys.argv)
