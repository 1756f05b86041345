"""The pipeline: one batched pass draws every image's parameters and renders its view.

Order: crop+flip+rotate → brightness → contrast → saturation → hue → channel permutation →
grayscale → blur → solarize → inversion → normalisation (see :mod:`sslkit.views`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from .._validate import check_positive_int
from .colour import (
    _blur_radius,
    _brightness,
    _contrast,
    _gaussian_blur,
    _gray,
    _hue,
    _saturation,
    _solarize,
    _where_selected,
)
from .recipes import Recipe

__all__ = ["MEAN", "STD", "augment", "two_views", "multi_crop", "to_float", "to_uint8"]

#: Per-channel mean subtracted from images in [0, 1] (dataset-agnostic: the middle of the range).
MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: Per-channel standard deviation divided out after the mean (maps [0, 1] to [-2, 2]).
STD: tuple[float, float, float] = (0.25, 0.25, 0.25)
# All six permutations of (R, G, B); row 0 is the identity.
_PERMS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
# Crop candidates per image, as torchvision's RandomResizedCrop tries ten times.
_CROP_TRIES = 10
# On CPU the batch is processed in chunks of about this many floats (85 images at 32 px): the
# temporaries of a chunk (1 MB each) stay in cache and are recycled by malloc instead of being
# page-faulted afresh. Two views of 256 images, 2 threads: chunks of 10 images 20 ms, 42-85
# images 10 ms, no chunks 14 ms (single thread: 23, 16 and 20 ms).
_CPU_CHUNK_ELEMS = 1 << 18
# Columns of the one uniform draw: 2 * tries for (scale, ratio), then one per parameter below.
_COLS = ("x", "y", "flip", "angle", "jitter", "b", "c", "s", "h", "perm_on", "perm",
         "gray", "blur", "sigma", "solarize", "invert")  # always all drawn: fixed layout


def _check_images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images={shape} is invalid: expected a tensor of shape (B, 3, H, W)")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(
            f"images.dtype={images.dtype} is invalid: expected uint8 or float in [0, 1]"
        )
    return images


def _as_float(images: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The images as float32 and the factor that maps them to [0, 1] (applied later, fused)."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32), 1.0 / 255.0
    return images.to(torch.float32), 1.0


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=down)


@functools.cache
def _consts(device: torch.device) -> SimpleNamespace:
    """Small constant tensors, made once per device (never modified)."""
    return SimpleNamespace(
        norm_scale=torch.tensor([1.0 / s for s in STD], device=device).view(1, 3, 1, 1),
        norm_shift=torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)],
                                device=device).view(1, 3, 1, 1),
        perms=torch.tensor(_PERMS, device=device),
    )


def _generator(generator) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise ValueError(f"generator={generator!r} is invalid: expected a torch.Generator, an int "
                     "seed or None")


def to_float(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """The evaluation view: ``(B, 3, H, W)`` uint8 (or float in [0, 1]) → normalised float32
    ``(B, 3, S, S)`` with ``(x / 255 - MEAN) / STD``; no augmentation. With ``size`` the images
    are resized (bilinear, antialiased when shrinking), otherwise ``S = H``, ``S = W``.
    """
    x, scale = _as_float(_check_images(images))
    if size is not None:
        check_positive_int("size", size)
        x = _resize(x, (size, size))
    c = _consts(x.device)
    return torch.addcmul(c.norm_shift, x, c.norm_scale * scale)


def to_uint8(views: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation of a view, for display: float ``(B, 3, S, S)`` with
    ``(x - MEAN) / STD`` → uint8 ``(B, 3, S, S)`` (clipped to [0, 255]). Inverse of
    :func:`to_float` up to rounding, e.g. ``plots.image_grid(to_uint8(augment(x, recipe)))``.
    """
    if not (isinstance(views, torch.Tensor) and views.ndim == 4 and views.shape[1] == 3
            and views.is_floating_point()):
        got = tuple(views.shape) if isinstance(views, torch.Tensor) else type(views).__name__
        raise ValueError(f"views must be a float tensor (B, 3, S, S), got {got}")
    c = _consts(views.device)
    x = (views.float() - c.norm_shift) / c.norm_scale        # back to [0, 1]
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


# --------------------------------------------------------------------------------------------
# Geometry and the pipeline
# --------------------------------------------------------------------------------------------


def _crop_boxes(u_scale, u_ratio, recipe: Recipe, h: int, w: int):
    """Per-image crop width and height as fractions of the image (``(B,)`` each).

    ``u_scale``, ``u_ratio``: ``(B, tries)`` uniforms. As in torchvision's RandomResizedCrop,
    the first (area, log-ratio) candidate that fits inside the image is kept; if none does, the
    whole image with its aspect ratio clamped to ``crop_ratio``.
    """
    lo, hi = recipe.crop_scale
    lr0, lr1 = math.log(recipe.crop_ratio[0]), math.log(recipe.crop_ratio[1])
    area = u_scale.mul(hi - lo).add_(lo)
    ratio = u_ratio.mul(lr1 - lr0).add_(lr0).exp_()
    cw = (area * ratio * (h / w)).sqrt_()  # width / W for a box of area·H·W pixels
    ch = (area / ratio * (w / h)).sqrt_()
    ok = (cw <= 1.0) & (ch <= 1.0)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)  # index of the first candidate that fits
    any_ok = ok.any(1)
    in_ratio = w / h
    if in_ratio < recipe.crop_ratio[0]:
        fw, fh = 1.0, in_ratio / recipe.crop_ratio[0]
    elif in_ratio > recipe.crop_ratio[1]:
        fw, fh = recipe.crop_ratio[1] / in_ratio, 1.0
    else:
        fw, fh = 1.0, 1.0
    cw = torch.where(any_ok, cw.gather(1, first).squeeze(1), fw)
    ch = torch.where(any_ok, ch.gather(1, first).squeeze(1), fh)
    return cw, ch


@functools.cache
def _base_grid(size: int, device: torch.device) -> torch.Tensor:
    """The constant ``(6, size·size·2)`` matrix ``M`` of ``_affine_grid``."""
    c = (torch.arange(size, dtype=torch.float32, device=device) * 2 + 1) / size - 1
    base = torch.zeros(6, size, size, 2, device=device)
    for k in (0, 1):  # rows of theta: x_in = t0·u + t1·v + t2, y_in = t3·u + t4·v + t5
        base[3 * k, :, :, k] = c.view(1, size)  # u: output column centre
        base[3 * k + 1, :, :, k] = c.view(size, 1)  # v: output row centre
        base[3 * k + 2, :, :, k] = 1.0
    return base.view(6, -1)


def _affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, size, size), align_corners=False)`` as one matrix product.

    ``theta`` ``(B, 2, 3)`` or ``(B, 6)`` → sampling grid ``(B, size, size, 2)``. The output
    pixel centres ``c_i = (2i + 1) / size - 1`` are fixed, so the grid is ``theta.view(B, 6) @ M``
    with a constant ``(6, size·size·2)`` matrix: one small GEMM instead of ``affine_grid``'s
    batched ``(size², 3) × (3, 2)`` products (≈ 7× faster on CPU).
    """
    return (theta.reshape(-1, 6) @ _base_grid(size, theta.device)).view(-1, size, size, 2)


def _uniform(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return u.mul(hi - lo).add_(lo)


def _sample(u: torch.Tensor, r: Recipe, h: int, w: int) -> dict[str, torch.Tensor]:
    """Per-image parameters (each ``(B, ...)``) from the uniform draws ``u`` ``(B, n)``."""
    col = {name: u[:, 2 * _CROP_TRIES + i] for i, name in enumerate(_COLS)}
    # Geometry as one affine map from output coordinates (u, v) in [-1, 1] to input coordinates:
    # flip u, rotate, scale to the crop box (cw, ch) and move to its centre (tx, ty).
    cw, ch = _crop_boxes(u[:, :_CROP_TRIES], u[:, _CROP_TRIES:2 * _CROP_TRIES], r, h, w)
    tx = (2.0 * col["x"] - 1.0) * (1.0 - cw)  # box centre, uniform over positions that fit
    ty = (2.0 * col["y"] - 1.0) * (1.0 - ch)
    flip = 1.0 - 2.0 * (col["flip"] < r.flip_p).float()
    a, b = cw * flip, ch * flip  # flip u: x_in = -cw·u + ...
    if r.rotation_degrees > 0:  # rotate (u, v) by the angle before scaling to the box
        angle = (2.0 * col["angle"] - 1.0) * math.radians(r.rotation_degrees)
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack([a * cos, -cw * sin, tx, b * sin, ch * cos, ty], 1)
    else:
        zero = torch.zeros_like(cw)
        theta = torch.stack([a, zero, tx, zero, ch, ty], 1)
    p = {"theta": theta}
    # Colour: an image not selected by jitter_p gets the identity factors (1, 1, 1, hue 0).
    if r.jitter_p > 0:
        jit = (col["jitter"] < r.jitter_p).float()
        for name, key in (("brightness", "b"), ("contrast", "c"), ("saturation", "s")):
            v = getattr(r, name)
            p[key] = 1.0 + jit * _uniform(col[key], max(0.0, 1 - v) - 1, v)
        p["h"] = jit * _uniform(col["h"], -r.hue, r.hue)
    if r.channel_permute_p > 0:
        pick = 1 + (col["perm"] * 5).long().clamp_(max=4)  # one of the 5 non-identity orders
        p["perm"] = pick * (col["perm_on"] < r.channel_permute_p)
    for name, key in (("grayscale_p", "gray"), ("blur_p", "blur"), ("solarize_p", "solarize"),
                      ("invert_p", "invert")):
        if getattr(r, name) > 0:
            p[key] = col[key] < getattr(r, name)
    if r.blur_p > 0:
        p["sigma"] = _uniform(col["sigma"], *r.blur_sigma)
    return p


def augment(images: torch.Tensor, recipe: Recipe, generator=None) -> torch.Tensor:
    """One random view of every image, each with its own random parameters.

    ``images``: uint8 ``(B, 3, H, W)`` (or float in [0, 1]); returns normalised float32
    ``(B, 3, S, S)`` with ``S = recipe.size``, on the images' device. ``generator`` (a
    ``torch.Generator`` on any device, or an int seed) makes it reproducible: all random numbers
    come from one ``torch.rand(B, n)`` call, so every image gets the same parameters however the
    batch is split internally (the pixels then agree up to float rounding). The view
    distribution follows *A Simple Framework for Contrastive Learning of Visual
    Representations* (2020, arXiv 2002.05709); see the module docstring for the pipeline and its
    order.
    """
    images = _check_images(images)
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe={recipe!r} is invalid: expected a views.Recipe")
    gen = _generator(generator)
    bsz, _, h, w = images.shape
    dev = images.device
    u = torch.rand(bsz, 2 * _CROP_TRIES + len(_COLS), generator=gen,
                   device=gen.device if gen is not None else dev)
    p = _sample(u.to(dev, non_blocking=True), recipe, h, w)
    out = torch.empty(bsz, 3, recipe.size, recipe.size, device=dev)
    # On CPU, chunks of ~1 MB per temporary stay in cache and are recycled by malloc; on a GPU
    # the whole batch is one chunk.
    step = bsz if dev.type != "cpu" else max(1, _CPU_CHUNK_ELEMS // (3 * recipe.size ** 2))
    for i in range(0, bsz, step):
        j = min(bsz, i + step)
        _render(images[i:j], {k: v[i:j] for k, v in p.items()}, recipe, out[i:j])
    return out


def _render(images: torch.Tensor, p: dict[str, torch.Tensor], r: Recipe, out: torch.Tensor):
    """Apply the parameters ``p`` to ``images`` ``(b, 3, H, W)``; write ``out`` ``(b, 3, S, S)``."""
    bsz, _, h, w = images.shape
    size = r.size
    x, scale = _as_float(images)
    if max(h, w) > 2 * size:  # shrink first with antialiasing, so bilinear sampling won't alias
        f = 2 * size / max(h, w)
        x = _resize(x, (max(1, round(h * f)), max(1, round(w * f))))

    # Crop + flip + rotation: one bilinear resampling. Inside the image "border" and
    # "reflection" agree (and border is faster); only rotated corners fall outside it.
    pad = "reflection" if r.rotation_degrees > 0 else "border"
    grid = _affine_grid(p["theta"], size)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode=pad, align_corners=False)

    # Colour jitter in ColorJitter's default order; the [0, 1] scaling rides on brightness.
    jitter = r.jitter_p > 0
    if jitter and r.brightness > 0:
        x = _brightness(x, p["b"] * scale)
    elif scale != 1.0:
        x.mul_(scale)
    if jitter and r.contrast > 0:
        x = _contrast(x, p["c"])
    if jitter and r.saturation > 0:
        x = _saturation(x, p["s"])
    if jitter and r.hue > 0:
        x = _hue(x, p["h"])

    if r.channel_permute_p > 0:  # gather rows of the (B·3, S·S) view
        rows = _consts(x.device).perms[p["perm"]]
        rows += 3 * torch.arange(bsz, device=x.device)[:, None]
        x = x.reshape(bsz * 3, -1).index_select(0, rows.view(-1)).view(bsz, 3, size, size)
    if r.grayscale_p > 0:
        x = _where_selected(x, p["gray"], lambda y, _: _gray(y).expand(-1, 3, -1, -1))
    if r.blur_p > 0:
        radius = _blur_radius(r.blur_sigma[1], size)
        x = _where_selected(x, p["blur"], lambda y, sel: _gaussian_blur(y, p["sigma"][sel], radius))
    if r.solarize_p > 0:
        x = _where_selected(x, p["solarize"], lambda y, _: _solarize(y, r.solarize_threshold))

    # Inversion and normalisation fused: out = x·a + b with per-sample (a, b).
    a, b = _consts(x.device).norm_scale, _consts(x.device).norm_shift
    if r.invert_p > 0:
        inv = p["invert"].view(-1, 1, 1, 1)
        b = torch.where(inv, b + a, b)  # ((1 - x) - m) / s = x · (-1/s) + (1 - m) / s
        a = torch.where(inv, -a, a)
    torch.addcmul(b, x, a, out=out)


def two_views(images: torch.Tensor, recipe: Recipe, recipe2: Recipe | None = None,
              generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each image: ``(B, 3, H, W)`` → ``(v1, v2)``, each
    ``(B, 3, S, S)``; ``recipe2`` (default ``recipe``) gives asymmetric views as in *Bootstrap
    your own latent* (2020, arXiv 2006.07733). The positive pairs of *A Simple Framework for
    Contrastive Learning of Visual Representations* (2020, arXiv 2002.05709) are ``(v1[i], v2[i])``.
    """
    gen = _generator(generator)
    return augment(images, recipe, gen), augment(images, recipe2 or recipe, gen)


def multi_crop(images: torch.Tensor, global_recipes: Recipe | Sequence[Recipe],
               local_recipe: Recipe, n_local: int, generator=None) -> list[torch.Tensor]:
    """Multi-crop views, from *Unsupervised Learning of Visual Features by Contrasting Cluster
    Assignments* (2020, arXiv 2006.09882) as used by *Emerging Properties in Self-Supervised
    Vision Transformers* (2021, arXiv 2104.14294).

    ``images`` ``(B, 3, H, W)`` → a list: one ``(B, 3, S_g, S_g)`` per global recipe, then
    ``n_local`` tensors ``(B, 3, S_l, S_l)`` (the local crops are made in one batched call).
    """
    gen = _generator(generator)
    check_positive_int("n_local", n_local, allow_zero=True)
    if isinstance(global_recipes, Recipe):
        global_recipes = (global_recipes,)
    views = [augment(images, rec, gen) for rec in global_recipes]
    if n_local:
        batch = _check_images(images).repeat(n_local, 1, 1, 1)
        views.extend(augment(batch, local_recipe, gen).chunk(n_local))
    return views
