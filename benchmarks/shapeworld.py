"""Print ShapeWorld rendering speed (images/s) per preset, image size and chunk size.

Run: ``.venv/bin/python benchmarks/shapeworld.py [--threads 2] [--n 8192]``. Uses two threads by
default, like the course's CPU machines. Not a test: speed is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import time

import torch

from sslkit import data


def images_per_second(cfg, n: int, chunk_size: int, repeats: int = 3, device="cpu") -> float:
    """Best of ``repeats`` timings of ``data.render(cfg, n)`` → images per second."""
    data.render(cfg, min(n, chunk_size), chunk_size=chunk_size, device=device)  # warm-up
    best = float("inf")
    for r in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        data.render(cfg, n, seed=r, chunk_size=chunk_size, device=device)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, n={args.n}, device={args.device}")
    print(f"{'preset':<10}{'size':>6}{'chunk':>7}{'images/s':>12}")
    for name in ("easy", "standard", "hard"):
        for size in (24, 32, 64):
            for chunk in (256, 512, 1024):
                if size == 64 and chunk == 1024:
                    continue
                cfg = data.preset(name, image_size=size)
                n = args.n if size < 64 else args.n // 4
                ips = images_per_second(cfg, n, chunk, device=args.device)
                print(f"{name:<10}{size:>6}{chunk:>7}{ips:>12,.0f}")


if __name__ == "__main__":
    main()
