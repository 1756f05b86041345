"""Two SimCLR views of 256 small images: torchvision per sample vs kornia batched vs sslkit.views.

Same input, same recipe (random resized crop 0.08-1, flip, colour jitter 0.8/0.8/0.8/0.2 with
p = 0.8, grayscale p = 0.2, normalisation), two views, two CPU threads:

(a) ``torchvision.transforms.v2`` applied to one image at a time in a Python loop, which is what
    ``DataLoader`` workers do (applied to a batch tensor it would give every image the same
    parameters);
(b) ``kornia.augmentation``, batched with per-sample parameters;
(c) ``sslkit.views.two_views``.

Prints images/s (median of several repeats after a warm-up) and ratios; the last line is
``views_speedup_vs_torchvision <ratio>`` (ours / torchvision per sample).
Run: ``.venv/bin/python benchmarks/views.py``.
"""

from __future__ import annotations

import statistics
import time

import torch

from sslkit import views

N_IMAGES = 256
SIZE = 32


def load_images(n: int = N_IMAGES) -> tuple[torch.Tensor, str]:
    """ShapeWorld ``hard`` images if ``sslkit.data`` exists, else random uint8 images."""
    try:
        from sslkit import data

        return data.render(data.preset("hard"), n).images, "ShapeWorld 'hard'"
    except (ImportError, AttributeError):
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=gen)
        return images, "random uint8 (sslkit.data not available)"


def median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(2)
    images, source = load_images()
    recipe = views.simclr_recipe(SIZE, colour="standard")
    r = recipe
    print(f"input: {tuple(images.shape)} {images.dtype} ({source}); two views; "
          f"threads={torch.get_num_threads()}")
    print(f"recipe: crop {r.crop_scale} ratio {tuple(round(v, 3) for v in r.crop_ratio)}, "
          f"flip {r.flip_p}, jitter p={r.jitter_p} ({r.brightness:g}, {r.contrast:g}, "
          f"{r.saturation:g}, {r.hue:g}), grayscale {r.grayscale_p}")

    # (a) torchvision v2, one image at a time.
    from torchvision.transforms import v2

    tv = v2.Compose([
        v2.RandomResizedCrop(SIZE, scale=r.crop_scale, ratio=r.crop_ratio, antialias=True),
        v2.RandomHorizontalFlip(r.flip_p),
        v2.RandomApply([v2.ColorJitter(r.brightness, r.contrast, r.saturation, r.hue)],
                       p=r.jitter_p),
        v2.RandomGrayscale(r.grayscale_p),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(views.MEAN), list(views.STD)),
    ])

    def run_torchvision():
        return [torch.stack([tv(img) for img in images]) for _ in range(2)]

    # (b) kornia, batched.
    import kornia.augmentation as K

    kn = torch.nn.Sequential(
        K.RandomResizedCrop((SIZE, SIZE), scale=r.crop_scale, ratio=r.crop_ratio),
        K.RandomHorizontalFlip(p=r.flip_p),
        K.ColorJitter(r.brightness, r.contrast, r.saturation, r.hue, p=r.jitter_p),
        K.RandomGrayscale(p=r.grayscale_p),
        K.Normalize(torch.tensor(views.MEAN), torch.tensor(views.STD)),
    )

    def run_kornia():
        x = images.float().div_(255.0)
        return kn(x), kn(x)

    # (c) ours.
    gen = torch.Generator().manual_seed(0)

    def run_ours():
        return views.two_views(images, recipe, generator=gen)

    for out in (run_torchvision(), run_kornia(), run_ours()):
        assert [tuple(v.shape) for v in out] == [(N_IMAGES, 3, SIZE, SIZE)] * 2

    n = 2 * N_IMAGES
    t_tv = median_seconds(run_torchvision, repeats=5, warmup=1)
    t_kn = median_seconds(run_kornia, repeats=9)
    t_ours = median_seconds(run_ours, repeats=15, warmup=5)
    rates = {"torchvision v2 per sample": n / t_tv, "kornia batched": n / t_kn,
             "sslkit.views": n / t_ours}
    base = rates["torchvision v2 per sample"]
    for name, rate in rates.items():
        print(f"{name:<27} {rate:>9,.0f} images/s  ({rate / base:.1f}x torchvision)")
    print(f"sslkit.views / kornia: {t_kn / t_ours:.1f}x")
    print(f"views_speedup_vs_torchvision {t_tv / t_ours:.1f}")


if __name__ == "__main__":
    main()
