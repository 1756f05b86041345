"""How long does the linear probe take on two CPU cores?

Target: at most 5 s for 10k x 128 features, 10 classes and four weight decays (the size of the
``quick`` profile's feature sets, with ten times more labels than the course uses). Synthetic
overlapping Gaussian blobs stand in for features; the script prints seconds per probe, with a
validation split (one fit per weight decay) and without one (4/5 hold-out sweep + one refit).

Run: ``.venv/bin/python benchmarks/probe.py``
"""

from __future__ import annotations

import time

import torch

from sslkit.evaluate import linear_probe


def blobs(n: int, centres: torch.Tensor, generator: torch.Generator):
    y = torch.arange(n) % centres.shape[0]
    x = centres[y] + torch.randn(n, centres.shape[1], generator=generator)
    return x, y


def main(repeats: int = 3) -> None:
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 128, generator=g) * 0.15  # overlapping classes, like real features
    x_tr, y_tr = blobs(10_000, centres, g)
    x_va, y_va = blobs(1_000, centres, g)
    x_te, y_te = blobs(2_000, centres, g)
    wds = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"train {tuple(x_tr.shape)}, 10 classes, weight decays {wds}")
    for label, kw in (("with val split", dict(val_features=x_va, val_labels=y_va)),
                      ("train hold-out", {})):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = linear_probe(x_tr, y_tr, x_te, y_te, weight_decays=wds, **kw)
            times.append(time.perf_counter() - t0)
        print(f"{label:15s}: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s"
              f" | test acc {res.accuracy:.3f}, chosen wd {res.weight_decay:g} "
              f"({res.selection}), target <= 5 s")


if __name__ == "__main__":
    main()
