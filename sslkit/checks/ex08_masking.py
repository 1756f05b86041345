"""Self-checks of exercise 08 (masked modelling): MAE's patchify, its inverse and per-sample
random masking.

The references are ``sslkit.models.patchify``, ``sslkit.models.unpatchify`` and
``sslkit.masking.random_masking``, from *Masked Autoencoders Are Scalable Vision Learners* (MAE,
2021, arXiv 2111.06377). Patches only move values, so :func:`patchify` and :func:`unpatchify`
must match exactly; a wrong layout is compared with the usual mistakes (channel-first
flattening, a plain reshape, a column-major grid, pixels transposed inside a patch) and the
message names the one it matches. Masks are random, so :func:`random_masking` is checked by its
properties (shapes, exactly ``round(N · mask_ratio)`` hidden patches per image, ``keep_idx``
against ``mask``, ``ids_restore`` as the inverse of the shuffle, one mask per image, the
frequencies of each patch and each pair of patches, reproducibility under
``torch.manual_seed``), each failure with the mistake that usually causes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._core import CheckFailed, compare, mistake_hint, run_checks

__all__ = ["patchify", "unpatchify", "random_masking"]


def _call(learner_fn: Callable, *args, **kwargs):
    """The learner's output on copies of ``args``; fails if an argument was changed in place."""
    copies = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]
    out = learner_fn(*copies, **kwargs)
    for i, (a, c) in enumerate(zip(args, copies, strict=True)):
        if isinstance(a, torch.Tensor) and not torch.equal(a, c):
            raise CheckFailed(f"your function modified its argument {i} in place; work on a copy")
    return out


def _distinct(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A tensor of ``shape`` holding 0, 1, 2, … in memory order: every value differs, so every
    misplaced value shows."""
    return torch.arange(math.prod(shape)).reshape(shape).to(dtype)


def _random(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded values of ``shape``: uint8 in 0..255, or floats in [0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return torch.rand(shape, generator=generator, dtype=dtype)


def _compare_layout(name: str, got, want: torch.Tensor, variants, rule: str) -> None:
    """Exact comparison; a wrong answer of the right shape and dtype is matched to a mistake."""
    try:
        compare(name, got, want, atol=0.0, rtol=0.0)
    except CheckFailed as err:
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            hint = (f"the output has shape (B, N, p·p·C) = {tuple(want.shape)}" if want.ndim == 3
                    else f"the output has shape (B, C, H, W) = {tuple(want.shape)}")
            if want.ndim == 3 and isinstance(got, torch.Tensor) and (
                    got.shape == want.transpose(1, 2).shape):
                hint += "; F.unfold returns (B, C·p·p, N): one column per patch, transpose it"
        elif got.dtype != want.dtype:
            hint = ("patches only move values: keep the input's dtype (no .float(), no division "
                    "by 255)")
        else:
            hint = mistake_hint(got, variants, rule, atol=0.0, rtol=0.0)
        raise CheckFailed(f"{err}. Hint: {hint}") from None


# ---------------------------------------------------------------------------- patchify
_PATCHIFY_RULE = ("patch n is the p × p square at grid row n // (W/p), column n % (W/p); it is "
                  "flattened row by row, the C channel values of each pixel next to each other "
                  "((row, col, channel) order): cut the image into (B, C, H/p, p, W/p, p), move "
                  "the axes to (B, H/p, W/p, p, p, C), then reshape to (B, N, p·p·C)")
_CHANNEL_FIRST = ("your patches are flattened channel first, (channel, row, col), as F.unfold "
                  "or a permute that leaves C before the pixel axes gives; MAE's layout keeps "
                  "the C values of a pixel together: (row, col, channel)")
_PLAIN_RESHAPE = ("a plain reshape does not cut p × p squares: consecutive values in memory are "
                  "runs of one image row. Reshape to (B, C, H/p, p, W/p, p) first, then permute "
                  "the axes to (B, H/p, W/p, p, p, C)")
_COLUMN_MAJOR = ("your patches run column by column down the grid; they run row by row: patch "
                 "n is at grid row n // (W/p), column n % (W/p) (the grid-row axis comes before "
                 "the grid-column axis)")
_TRANSPOSED = ("the pixels inside each patch are transposed, (col, row, channel): flatten each "
               "patch row by row, the row-in-patch axis before the column-in-patch axis")


def _patchify_variants(images: torch.Tensor, p: int) -> list[tuple[torch.Tensor, str]]:
    x = images.double()
    b, c, h, w = x.shape
    n, length = (h // p) * (w // p), p * p * c
    six = x.reshape(b, c, h // p, p, w // p, p)          # (B, C, grid row, r, grid col, s)
    return [
        (six.permute(0, 2, 4, 1, 3, 5).reshape(b, n, length), _CHANNEL_FIRST),
        (x.reshape(b, n, length), _PLAIN_RESHAPE),
        (x.permute(0, 2, 3, 1).reshape(b, n, length), _PLAIN_RESHAPE),
        (six.permute(0, 4, 2, 3, 5, 1).reshape(b, n, length), _COLUMN_MAJOR),
        (six.permute(0, 2, 4, 5, 3, 1).reshape(b, n, length), _TRANSPOSED),
    ]


def _compare_patchify(learner_fn: Callable, images: torch.Tensor, p: int) -> None:
    from .. import models

    want = models.patchify(images.clone(), p)
    got = _call(learner_fn, images, p)
    _compare_layout("patches", got, want, _patchify_variants(images, p), _PATCHIFY_RULE)


def patchify(learner_fn: Callable) -> None:
    """Check ``learner_fn(images, patch_size) -> patches`` against ``sslkit.models.patchify``.

    MAE's patches (*Masked Autoencoders Are Scalable Vision Learners*, 2021, arXiv 2111.06377):
    ``images`` ``(B, C, H, W)`` → ``(B, N, p·p·C)`` with ``N = (H/p)·(W/p)``, patch ``n`` at
    grid row ``n // (W/p)``, column ``n % (W/p)``, flattened in ``(row, col, channel)`` order;
    values and dtype exactly equal. Cases (6): two RGB 8×8 images whose values all differ (a
    channel-first layout, a plain reshape, a column-major grid and transposed pixels are named);
    one 1-channel 4×4 image with pixels 0…15; a non-square image (a 2 × 3 grid); one patch per
    image (``p`` = the image size); uint8 images keep their dtype; random float64 images with an
    odd patch size; the input must not change.
    """
    run_checks("patchify", {
        "B=2, RGB 8×8, p = 4, every value different": lambda: _compare_patchify(
            learner_fn, _distinct(2, 3, 8, 8), 4),
        "one 1-channel 4×4 image with pixels 0…15, p = 2": lambda: _compare_patchify(
            learner_fn, _distinct(1, 1, 4, 4), 2),
        "a non-square image 8×12, p = 4 (a 2 × 3 grid)": lambda: _compare_patchify(
            learner_fn, _distinct(1, 3, 8, 12), 4),
        "p = the image size: one patch per image": lambda: _compare_patchify(
            learner_fn, _distinct(3, 3, 4, 4), 4),
        "uint8 images (2, 3, 8, 8) stay uint8": lambda: _compare_patchify(
            learner_fn, _random(2, 3, 8, 8, seed=80, dtype=torch.uint8), 2),
        "random float64 images (3, 3, 9, 9), p = 3; input unchanged": lambda: _compare_patchify(
            learner_fn, _random(3, 3, 9, 9, seed=81, dtype=torch.float64), 3),
    })


# ---------------------------------------------------------------------------- unpatchify
_UNPATCHIFY_RULE = ("the exact inverse of patchify for a square grid of g = √N patches per side: "
                    "C = P / (p·p); reshape to (B, g, g, p, p, C) (grid row, grid column, row and "
                    "column in the patch, channel), move the axes to (B, C, g, p, g, p), then "
                    "reshape to (B, C, g·p, g·p)")


_UN_CHANNEL_FIRST = ("you read each patch channel first, (channel, row, col), as F.fold does; "
                     "MAE's layout keeps the C values of a pixel together: (row, col, channel)")
_UN_PLAIN_RESHAPE = ("a plain reshape does not put p × p squares back: reshape to (B, g, g, p, p, "
                     "C) first, then permute the axes to (B, C, g, p, g, p)")
_UN_COLUMN_MAJOR = ("you put the patches back column by column down the grid; they run row by "
                    "row: patch n goes to grid row n // g, column n % g")
_UN_TRANSPOSED = ("you put the pixels of each patch back transposed: a patch is flattened row "
                  "by row, (row, col, channel), so its row-in-patch axis comes first")


def _unpatchify_variants(patches: torch.Tensor, p: int) -> list[tuple[torch.Tensor, str]]:
    t = patches.double()
    b, n, length = t.shape
    g, c = math.isqrt(n), length // (p * p)
    side = g * p
    six = t.reshape(b, g, g, p, p, c)       # (B, grid row, grid col, r, s, C) when right
    return [
        (t.reshape(b, g, g, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, side, side),
         _UN_CHANNEL_FIRST),
        (t.reshape(b, c, side, side), _UN_PLAIN_RESHAPE),
        (t.reshape(b, side, side, c).permute(0, 3, 1, 2), _UN_PLAIN_RESHAPE),
        (six.permute(0, 5, 2, 3, 1, 4).reshape(b, c, side, side), _UN_COLUMN_MAJOR),
        (six.permute(0, 5, 1, 4, 2, 3).reshape(b, c, side, side), _UN_TRANSPOSED),
    ]


def _compare_unpatchify(learner_fn: Callable, patches: torch.Tensor, p: int, *,
                        name: str = "image") -> None:
    from .. import models

    want = models.unpatchify(patches.clone(), p)
    got = _call(learner_fn, patches, p)
    _compare_layout(name, got, want, _unpatchify_variants(patches, p), _UNPATCHIFY_RULE)


def _round_trip_images(learner_fn: Callable, images: torch.Tensor, p: int) -> None:
    """``unpatchify(models.patchify(images))`` is ``images`` itself."""
    from .. import models

    patches = models.patchify(images, p)
    got = _call(learner_fn, patches, p)
    _compare_layout("unpatchify(models.patchify(x))", got, images,
                    _unpatchify_variants(patches, p), _UNPATCHIFY_RULE)


def _round_trip_patches(learner_fn: Callable, patches: torch.Tensor, p: int) -> None:
    """``models.patchify(unpatchify(patches))`` is ``patches`` itself."""
    from .. import models

    want = models.unpatchify(patches, p)
    variants = _unpatchify_variants(patches, p)
    got = _call(learner_fn, patches, p)
    if isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == want.dtype:
        wrong = models.patchify(got, p) != patches
        if wrong.any():
            hint = mistake_hint(got, variants, _UNPATCHIFY_RULE, atol=0.0, rtol=0.0)
            raise CheckFailed(f"models.patchify(unpatchify(t)) differs from t at "
                              f"{int(wrong.sum())} of {patches.numel()} values. Hint: {hint}")
        return
    _compare_layout("image", got, want, variants, _UNPATCHIFY_RULE)


def unpatchify(learner_fn: Callable) -> None:
    """Check ``learner_fn(patches, patch_size) -> images`` against ``sslkit.models.unpatchify``
    (square grid).

    The inverse of MAE's patchify (*Masked Autoencoders Are Scalable Vision Learners*, 2021,
    arXiv 2111.06377): ``patches`` ``(B, N, p·p·C)`` with ``N = g²`` → ``(B, C, g·p, g·p)``,
    values and dtype exactly equal. Cases (6): 16 RGB patches whose values all differ (the
    mirror images of the patchify mistakes are named); four 1-channel 2×2 patches 0…15; the
    round trip ``unpatchify(models.patchify(x)) == x``; the other round trip
    ``models.patchify(unpatchify(t)) == t``; one patch per image (``N = 1``); uint8 patches of
    two channels keep their dtype (``C`` read from the last dimension); the input must not
    change.
    """
    run_checks("unpatchify", {
        "B=2, 16 RGB patches of 4×4, every value different": lambda: _compare_unpatchify(
            learner_fn, _distinct(2, 16, 48), 4),
        "four 1-channel 2×2 patches holding 0…15": lambda: _compare_unpatchify(
            learner_fn, _distinct(1, 4, 4), 2),
        "unpatchify(models.patchify(x)) gives x back: (3, 3, 8, 8), p = 2": lambda: (
            _round_trip_images(learner_fn, _random(3, 3, 8, 8, seed=82), 2)),
        "models.patchify(unpatchify(t)) gives t back: random (2, 9, 27), p = 3; input "
        "unchanged": lambda: _round_trip_patches(
            learner_fn, _random(2, 9, 27, seed=83, dtype=torch.float64), 3),
        "N = 1: one patch per image": lambda: _compare_unpatchify(
            learner_fn, _distinct(3, 1, 48), 4),
        "uint8 patches of 2 channels (2, 4, 18), p = 3, stay uint8": lambda: _compare_unpatchify(
            learner_fn, _random(2, 4, 18, seed=84, dtype=torch.uint8), 3),
    })


# ---------------------------------------------------------------------------- random masking
_SIGMAS = 5.0   # the frequency case's tolerance, in binomial standard deviations


def _draw(learner_fn: Callable, b: int, n: int, ratio: float, *, seed: int, **kwargs):
    """The learner's masks for ``(b, n, ratio)`` under ``torch.manual_seed(seed)``, leaving the
    caller's random state as it was; checks that three tensors come back."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = learner_fn(b, n, ratio, **kwargs)
    return _structure(out, b, n)


def _structure(out, b: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not (isinstance(out, tuple | list) and len(out) == 3):
        raise CheckFailed(f"expected three tensors (keep_idx, mask, ids_restore), got "
                          f"{type(out).__name__}: return them as a tuple")
    keep_idx, mask, ids_restore = out
    for name, t, dtype in (("keep_idx", keep_idx, torch.int64), ("mask", mask, torch.bool),
                           ("ids_restore", ids_restore, torch.int64)):
        if not isinstance(t, torch.Tensor):
            raise CheckFailed(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dtype != dtype:
            why = ("True where the patch is hidden: ids_restore >= n_keep, or a 0/1 mask "
                   "converted with .bool()" if name == "mask" else
                   "indices for gather are int64 (torch.long), as argsort returns them")
            raise CheckFailed(f"{name}: dtype {t.dtype}, expected {dtype}: {why}")
        if t.device.type != "cpu":
            raise CheckFailed(f"{name} is on {t.device}, expected the device asked for (cpu)")
    for name, t in (("mask", mask), ("ids_restore", ids_restore)):
        if tuple(t.shape) != (b, n):
            raise CheckFailed(f"{name}: shape {tuple(t.shape)} differs from the expected "
                              f"{(b, n)} (B, N): one entry per patch of each image")
    if keep_idx.ndim != 2 or keep_idx.shape[0] != b:
        raise CheckFailed(f"keep_idx: shape {tuple(keep_idx.shape)}, expected (B, n_keep) with "
                          f"B = {b}: the visible patches of each image")
    return keep_idx, mask, ids_restore


def _shapes(learner_fn: Callable) -> None:
    keep_idx, _, _ = _draw(learner_fn, 8, 16, 0.75, seed=85, device=torch.device("cpu"))
    if tuple(keep_idx.shape) != (8, 4):
        raise CheckFailed(f"keep_idx: shape {tuple(keep_idx.shape)} differs from the expected "
                          "(8, 4): N − round(N · mask_ratio) = 16 − 12 visible patches per image")


def _count_hint(hidden: torch.Tensor, n: int, ratio: float, n_mask: int) -> str:
    if len(set(hidden.tolist())) > 1:
        return ("the number of hidden patches varies from image to image, as with an independent "
                "coin flip per patch (torch.rand(B, N) < mask_ratio); sort one row of noise per "
                "image and hide the patches ranked last, so that every image hides exactly "
                "round(N · mask_ratio)")
    count = int(hidden[0])
    if count == n - n_mask:
        return ("your mask is True for the visible patches: True marks a hidden patch "
                "(ids_restore >= n_keep)")
    if count == math.floor(n * ratio):
        return (f"you rounded down (int() or math.floor): {n} · {ratio} = {n * ratio:g} rounds "
                f"to round(N · mask_ratio) = {n_mask}")
    if count == math.ceil(n * ratio):
        return (f"you rounded up (math.ceil): {n} · {ratio} = {n * ratio:g} rounds to "
                f"round(N · mask_ratio) = {n_mask}")
    return "hide exactly n_mask = round(N · mask_ratio) patches in every image"


def _counts(learner_fn: Callable) -> None:
    for i, (n, ratio) in enumerate(((16, 0.75), (49, 0.75), (49, 0.6))):
        n_mask = round(n * ratio)
        keep_idx, mask, _ = _draw(learner_fn, 6, n, ratio, seed=86 + i)
        hidden = mask.sum(dim=1)
        if not (hidden == n_mask).all():
            raise CheckFailed(f"N = {n}, mask_ratio = {ratio}: the images hide "
                              f"{hidden.tolist()} patches, expected round({n} · {ratio}) = "
                              f"{n_mask} in each. Hint: {_count_hint(hidden, n, ratio, n_mask)}")
        if keep_idx.shape[1] != n - n_mask:
            raise CheckFailed(f"N = {n}, mask_ratio = {ratio}: keep_idx has "
                              f"{keep_idx.shape[1]} columns, expected the {n - n_mask} visible "
                              "patches")


def _visible_hint(keep_idx, mask, ids_restore) -> str:
    n_keep = keep_idx.shape[1]
    n = mask.shape[1]
    shuffled = torch.arange(n) >= n_keep
    if (mask == shuffled).all():
        return ("every row of your mask is [False] * n_keep + [True] * n_mask: it is still in "
                "shuffle order. Put it in grid order: mask.gather(1, ids_restore), or "
                "ids_restore >= n_keep")
    is_permutation = (torch.sort(ids_restore, dim=1).values == torch.arange(n)).all()
    if is_permutation and (mask == (ids_restore >= n_keep)).all() and (
            torch.sort(keep_idx, dim=1).values == torch.sort(ids_restore[:, :n_keep], dim=1).values
            ).all():
        return ("your ids_restore is the shuffle itself, not its inverse, so the mask you built "
                "from it marks the wrong patches: ids_restore = ids_shuffle.argsort(dim=1)")
    if any(len(set(row.tolist())) < n_keep for row in keep_idx):
        return ("keep_idx repeats a patch: take the first n_keep entries of one permutation "
                "per image (ids_shuffle[:, :n_keep])")
    return ("keep_idx[b] must be exactly the patches n with mask[b, n] False: the first n_keep "
            "entries of the shuffle (ids_shuffle[:, :n_keep]) are the visible ones")


def _visible(learner_fn: Callable) -> None:
    keep_idx, mask, ids_restore = _draw(learner_fn, 8, 16, 0.75, seed=89)
    for b in range(len(mask)):
        visible = torch.nonzero(~mask[b]).flatten().tolist()
        if sorted(keep_idx[b].tolist()) != visible:
            raise CheckFailed(f"image {b}: keep_idx holds {keep_idx[b].tolist()} but the mask "
                              f"leaves {visible} visible. Hint: "
                              f"{_visible_hint(keep_idx, mask, ids_restore)}")


def _permutation(learner_fn: Callable) -> None:
    _, _, ids_restore = _draw(learner_fn, 8, 16, 0.75, seed=90)
    for b, row in enumerate(ids_restore):
        if sorted(row.tolist()) != list(range(16)):
            raise CheckFailed(f"image {b}: ids_restore is {row.tolist()}, not a permutation of "
                              "0…15. Hint: ids_restore = ids_shuffle.argsort(dim=1), the inverse "
                              "of a permutation, is itself one")


def _unshuffles(learner_fn: Callable) -> None:
    b, n = 8, 16
    keep_idx, mask, ids_restore = _draw(learner_fn, b, n, 0.75, seed=91)
    n_keep = keep_idx.shape[1]
    # the decoder's sequence: the visible patches' own indices, then mask tokens (-1)
    sequence = torch.cat([keep_idx, torch.full((b, n - n_keep), -1)], dim=1)
    want = torch.where(mask, -1, torch.arange(n))
    back = sequence.gather(1, ids_restore)
    for row in range(b):
        if not torch.equal(back[row], want[row]):
            if torch.equal(sequence.gather(1, ids_restore.argsort(dim=1)), want):
                hint = ("your ids_restore is the shuffle itself, not its inverse: "
                        "ids_restore = ids_shuffle.argsort(dim=1)")
            else:
                hint = ("keep_idx lists the visible patches in the order of the shuffle "
                        "(ids_shuffle[:, :n_keep]) and ids_restore is the shuffle's inverse "
                        "(ids_shuffle.argsort(dim=1)), so that ids_restore[b, keep_idx[b, j]] "
                        "== j")
            raise CheckFailed(f"image {row}: [keep_idx; mask tokens (-1)].gather(1, "
                              f"ids_restore) is {back[row].tolist()}, expected each visible "
                              f"patch's index at its own place and -1 at the hidden ones: "
                              f"{want[row].tolist()}. Hint: {hint}")


def _own_masks(learner_fn: Callable) -> None:
    _, mask, _ = _draw(learner_fn, 64, 16, 0.75, seed=92)
    if len(torch.unique(mask, dim=0)) == 1:
        raise CheckFailed("all 64 images got the same mask. Hint: each image gets its own "
                          "random subset: draw the noise with one row per image, (B, N), not "
                          "one row (N,) or (1, N) shared by the batch")


def _frequencies(learner_fn: Callable) -> None:
    n, ratio, calls, b = 16, 0.75, 10, 400
    masks = [_draw(learner_fn, b, n, ratio, seed=100 + i)[1] for i in range(calls)]
    if all(torch.equal(m, masks[0]) for m in masks[1:]):
        raise CheckFailed(f"{calls} calls, each after its own torch.manual_seed, returned the "
                          "same masks. Hint: do not seed inside your function; draw the noise "
                          "from torch's global generator (torch.rand)")
    hidden = torch.cat(masks).double()                       # (rows, N), 1 where hidden
    rows, n_mask = len(hidden), round(n * ratio)
    # a uniform subset of n_mask of the N patches hides each patch with probability q and each
    # pair of patches with probability q2; over independent masks the observed frequencies are
    # binomial, with the standard deviations below
    q, q2 = n_mask / n, n_mask * (n_mask - 1) / (n * (n - 1))
    sigma, sigma2 = math.sqrt(q * (1 - q) / rows), math.sqrt(q2 * (1 - q2) / rows)
    freq = hidden.mean(dim=0)
    worst = int((freq - q).abs().argmax())
    if abs(float(freq[worst]) - q) > _SIGMAS * sigma:
        raise CheckFailed(
            f"over {rows} masks, patch {worst} is hidden with frequency {float(freq[worst]):.3f}"
            f", expected {q:g} ± {_SIGMAS * sigma:.3f} ({_SIGMAS:g} binomial standard "
            f"deviations); frequencies {[round(float(f), 2) for f in freq]}. Hint: some patches "
            "are hidden more often than others; every subset of round(N · mask_ratio) patches "
            "must be equally likely, as when each image sorts its own uniform noise "
            "(torch.rand(B, N).argsort(dim=1)) and hides the patches ranked last")
    together = hidden.T @ hidden / rows                      # (N, N): both hidden
    gap = (together - q2).abs().masked_fill(torch.eye(n, dtype=torch.bool), 0.0)
    i, j = divmod(int(gap.argmax()), n)
    if float(gap[i, j]) > _SIGMAS * sigma2:
        raise CheckFailed(
            f"over {rows} masks, patches {i} and {j} are hidden together with frequency "
            f"{float(together[i, j]):.3f}, expected {n_mask}·{n_mask - 1} / ({n}·{n - 1}) = "
            f"{q2:g} ± {_SIGMAS * sigma2:.3f} ({_SIGMAS:g} binomial standard deviations). Hint: "
            "the hidden patches are not a uniform random subset (a block or a run of "
            "neighbours hides neighbours together too often); sort one row of uniform noise "
            "per image (torch.rand(B, N).argsort(dim=1)) and hide the patches ranked last")


def _reproducible(learner_fn: Callable) -> None:
    with torch.random.fork_rng(devices=[]):
        outs = []
        for _ in range(2):
            torch.manual_seed(93)
            outs.append(_structure(learner_fn(8, 16, 0.75), 8, 16))
        outs.append(_structure(learner_fn(8, 16, 0.75), 8, 16))
    first, again, after = outs
    if not all(torch.equal(a, b) for a, b in zip(first, again, strict=True)):
        raise CheckFailed("torch.manual_seed(93) before two calls gave different masks. Hint: "
                          "draw the noise from torch's global generator (torch.rand), not "
                          "Python's random, NumPy or a generator of your own, so that "
                          "torch.manual_seed makes the masks reproducible")
    if torch.equal(first[1], after[1]):
        raise CheckFailed("two calls in a row gave the same masks. Hint: do not seed inside "
                          "your function; draw fresh noise from torch's global generator "
                          "(torch.rand) at every call")


def random_masking(learner_fn: Callable) -> None:
    """Check ``learner_fn(batch_size, num_patches, mask_ratio, device=None) -> (keep_idx, mask,
    ids_restore)`` by the properties of ``sslkit.masking.random_masking``.

    MAE's per-sample random masking (*Masked Autoencoders Are Scalable Vision Learners*, 2021,
    arXiv 2111.06377): with ``n_mask = round(N · mask_ratio)`` and ``n_keep = N − n_mask``,
    ``keep_idx`` ``(B, n_keep)`` int64 are the visible patches, ``mask`` ``(B, N)`` bool is
    ``True`` where a patch is hidden (grid order), ``ids_restore`` ``(B, N)`` int64 is the
    inverse of the shuffle. The masks are random, so each case tests a property on seeded calls
    (the caller's random state is left as it was). Cases (8): the types and shapes, on the
    device asked for; exactly ``round(N · mask_ratio)`` hidden patches per image (a coin flip
    per patch, a mask True for the visible patches and rounding down or up are named);
    ``keep_idx`` lists exactly the visible patches (a mask left in shuffle order is named);
    ``ids_restore`` is a permutation; ``[keep_idx; mask tokens]`` gathered by ``ids_restore``
    is back in grid order (a shuffle that is not inverted is named); each image gets its own
    mask; over 4000 masks every patch is hidden with frequency ``n_mask / N`` and every pair of
    patches with ``n_mask (n_mask − 1) / (N (N − 1))``, each within 5 binomial standard
    deviations (a masking that is not uniform, or hides blocks of neighbours, is named);
    ``torch.manual_seed`` reproduces the masks and the next call draws new ones.
    """
    run_checks("random_masking", {
        "B=8, N=16, ratio 0.75: keep_idx (8, 4) int64, mask (8, 16) bool, ids_restore (8, 16) "
        "int64, on the device asked for": lambda: _shapes(learner_fn),
        "every image hides round(N · ratio): 12 of 16 at 0.75, 37 of 49 at 0.75, 29 of 49 "
        "at 0.6": lambda: _counts(learner_fn),
        "keep_idx lists exactly the visible patches (mask False)": lambda: _visible(learner_fn),
        "ids_restore is a permutation of 0…N−1 in every row": lambda: _permutation(learner_fn),
        "[keep_idx; mask tokens].gather(1, ids_restore) is back in grid order": lambda: (
            _unshuffles(learner_fn)),
        "each image gets its own mask (B=64)": lambda: _own_masks(learner_fn),
        "over 4000 masks every patch is hidden with frequency 0.75, every pair with 0.55 "
        "(within 5σ)": lambda: _frequencies(learner_fn),
        "torch.manual_seed reproduces the masks; the next call draws new ones": lambda: (
            _reproducible(learner_fn)),
    })
