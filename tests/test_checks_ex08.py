"""The public checks of exercise 08 (MAE's patchify, its inverse and per-sample random masking):
correct answers pass (the library's and independent formulations: patches cut out one at a time
by slicing, masks drawn with one ``torch.randperm`` per image), deliberately wrong ones fail and
the message names the mistake.

The answers are source strings ``exec``-ed here, as the other exercise tests do, so that the same
text can be pasted into an exercise notebook's answer cells.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sslkit import checks, masking, models
from sslkit.checks import CheckFailed

PATCHIFY_SLICES = """\
def patchify(images, patch_size):
    # an independent formulation: one patch at a time, cut out by slicing, grid row by grid row
    p = patch_size
    b, c, h, w = images.shape
    patches = []
    for row in range(h // p):
        for col in range(w // p):
            square = images[:, :, row * p:(row + 1) * p, col * p:(col + 1) * p]  # (B, C, p, p)
            patches.append(square.permute(0, 2, 3, 1).reshape(b, p * p * c))
    return torch.stack(patches, dim=1)
"""
PATCHIFY_PLAIN_RESHAPE = """\
def patchify(images, patch_size):
    return images.reshape(images.shape[0], -1, patch_size * patch_size * images.shape[1])
"""
PATCHIFY_WRONG = {
    "flattened channel first": PATCHIFY_SLICES.replace("square.permute(0, 2, 3, 1).reshape",
                                                       "square.reshape"),
    "column by column": PATCHIFY_SLICES.replace(
        "    for row in range(h // p):\n        for col in range(w // p):",
        "    for col in range(w // p):\n        for row in range(h // p):"),
    "pixels inside each patch are transposed": PATCHIFY_SLICES.replace(
        "permute(0, 2, 3, 1)", "permute(0, 3, 2, 1)"),
    "a plain reshape does not cut": PATCHIFY_PLAIN_RESHAPE,
    "keep the input's dtype": PATCHIFY_SLICES.replace("return torch.stack(patches, dim=1)",
                                                      "return torch.stack(patches, dim=1).float()"),
    "F.unfold returns": """\
def patchify(images, patch_size):
    return F.unfold(images, patch_size, stride=patch_size)
""",
}
UNPATCHIFY_SLICES = """\
def unpatchify(patches, patch_size):
    # an independent formulation: one patch at a time, written into its square by slicing
    p = patch_size
    b, n, length = patches.shape
    g, c = math.isqrt(n), length // (p * p)
    images = patches.new_zeros(b, c, g * p, g * p)
    for i in range(n):
        row, col = i // g, i % g
        square = patches[:, i].reshape(b, p, p, c).permute(0, 3, 1, 2)        # (B, C, p, p)
        images[:, :, row * p:(row + 1) * p, col * p:(col + 1) * p] = square
    return images
"""
UNPATCHIFY_WRONG = {
    "read each patch channel first": UNPATCHIFY_SLICES.replace(
        ".reshape(b, p, p, c).permute(0, 3, 1, 2)", ".reshape(b, c, p, p)"),
    "column by column": UNPATCHIFY_SLICES.replace("row, col = i // g, i % g",
                                                  "col, row = i // g, i % g"),
    "pixels of each patch back transposed": UNPATCHIFY_SLICES.replace(
        "permute(0, 3, 1, 2)", "permute(0, 3, 2, 1)"),
    "a plain reshape does not put": """\
def unpatchify(patches, patch_size):
    b, n, length = patches.shape
    side = math.isqrt(n) * patch_size
    return patches.reshape(b, length // patch_size ** 2, side, side)
""",
}
MASKING_RIGHT = """\
def random_masking(batch_size, num_patches, mask_ratio, device=None):
    n_keep = num_patches - round(num_patches * mask_ratio)
    noise = torch.rand(batch_size, num_patches, device=device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    return ids_shuffle[:, :n_keep], ids_restore >= n_keep, ids_restore
"""
MASKING_PERMUTATIONS = """\
def random_masking(batch_size, num_patches, mask_ratio, device=None):
    # an independent formulation: one permutation per image; the visible and the hidden patches
    # each listed in grid order; the inverse permutation written by index assignment
    n_keep = num_patches - round(num_patches * mask_ratio)
    keep, masks, restores = [], [], []
    for _ in range(batch_size):
        perm = torch.randperm(num_patches, device=device)
        visible, hidden = perm[:n_keep].sort().values, perm[n_keep:].sort().values
        order = torch.cat([visible, hidden])
        restore = torch.empty_like(order)
        restore[order] = torch.arange(num_patches, device=device)
        mask = torch.ones(num_patches, dtype=torch.bool, device=device)
        mask[visible] = False
        keep.append(visible)
        masks.append(mask)
        restores.append(restore)
    return torch.stack(keep), torch.stack(masks), torch.stack(restores)
"""
MASKING_SCATTER = MASKING_RIGHT.replace(
    "    return ids_shuffle[:, :n_keep], ids_restore >= n_keep, ids_restore\n",
    "    keep_idx = ids_shuffle[:, :n_keep]\n"
    "    mask = torch.ones(batch_size, num_patches, dtype=torch.bool).scatter(1, keep_idx, False)\n"
    "    return keep_idx, mask, ids_restore\n")
MASKING_BLOCK = """\
def random_masking(batch_size, num_patches, mask_ratio, device=None):
    # a run of consecutive patches from a random start, without wrap-around: the middle
    # patches are hidden more often than the first and the last
    n_mask = round(num_patches * mask_ratio)
    n_keep = num_patches - n_mask
    start = torch.randint(0, n_keep + 1, (batch_size, 1), device=device)
    pos = torch.arange(num_patches, device=device)
    hidden = (pos >= start) & (pos < start + n_mask)
    ids_shuffle = (hidden.float() + 0.5 * torch.rand(batch_size, num_patches)).argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    return ids_shuffle[:, :n_keep], ids_restore >= n_keep, ids_restore
"""
MASKING_ROLLED = """\
def random_masking(batch_size, num_patches, mask_ratio, device=None):
    # a run of consecutive patches from a random start, wrapping around: every patch is hidden
    # as often as the others, but neighbours are hidden together far more often than by chance
    n_mask = round(num_patches * mask_ratio)
    n_keep = num_patches - n_mask
    start = torch.randint(0, num_patches, (batch_size, 1), device=device)
    hidden = (torch.arange(num_patches, device=device) - start) % num_patches < n_mask
    ids_shuffle = (hidden.float() + 0.5 * torch.rand(batch_size, num_patches)).argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    return ids_shuffle[:, :n_keep], ids_restore >= n_keep, ids_restore
"""
MASKING_WRONG = {  # mistake → (source, the case that fails first)
    "all 64 images got the same mask": (MASKING_RIGHT.replace(
        "torch.rand(batch_size, num_patches, device=device)",
        "torch.rand(1, num_patches, device=device).expand(batch_size, -1)"), 6),
    "shuffle itself, not its inverse": (MASKING_RIGHT.replace(
        "ids_restore = ids_shuffle.argsort(dim=1)", "ids_restore = ids_shuffle"), 3),
    "True for the visible patches": (MASKING_RIGHT.replace("ids_restore >= n_keep",
                                                           "ids_restore < n_keep"), 2),
    "rounded down": (MASKING_RIGHT.replace("round(num_patches * mask_ratio)",
                                           "int(num_patches * mask_ratio)"), 2),
    "rounded up": (MASKING_RIGHT.replace("round(num_patches * mask_ratio)",
                                         "math.ceil(num_patches * mask_ratio)"), 2),
    "coin flip per patch": (MASKING_RIGHT.replace(
        "ids_restore >= n_keep,", "torch.rand(batch_size, num_patches) < mask_ratio,"), 2),
    "still in shuffle order": (MASKING_RIGHT.replace(
        "ids_restore >= n_keep,", "(torch.arange(num_patches) >= n_keep).expand(batch_size, -1),"
    ), 3),
    "must be exactly the patches n with mask[b, n] False": (MASKING_RIGHT.replace(
        "ids_shuffle[:, :n_keep]", "ids_shuffle[:, -n_keep:]"), 3),
    "hidden more often than others": (MASKING_BLOCK, 7),
    "hides neighbours together too often": (MASKING_ROLLED, 7),
    "not Python's random, NumPy": (MASKING_RIGHT.replace(
        "torch.rand(batch_size, num_patches, device=device)",
        "torch.from_numpy(np.random.rand(batch_size, num_patches))"), 8),
    "do not seed inside": (MASKING_RIGHT.replace(
        "torch.rand(batch_size, num_patches, device=device)",
        "torch.rand(batch_size, num_patches, generator=torch.Generator().manual_seed(0))"), 7),
    "converted with .bool()": (MASKING_RIGHT.replace("ids_restore >= n_keep,",
                                                     "(ids_restore >= n_keep).float(),"), 1),
}


def _fn(source: str, name: str):
    scope = {"torch": torch, "F": F, "math": math, "np": np}
    exec(source, scope)
    return scope[name]


@pytest.mark.parametrize("fn", [models.patchify, _fn(PATCHIFY_SLICES, "patchify")],
                         ids=["library", "slices"])
def test_correct_patchify_pass(fn, capsys):
    checks.patchify(fn)
    assert "patchify: 6 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", PATCHIFY_WRONG)
def test_wrong_patchify_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=re.escape(mistake)):
        checks.patchify(_fn(PATCHIFY_WRONG[mistake], "patchify"))


@pytest.mark.parametrize("fn", [models.unpatchify, _fn(UNPATCHIFY_SLICES, "unpatchify")],
                         ids=["library", "slices"])
def test_correct_unpatchify_pass(fn, capsys):
    checks.unpatchify(fn)
    assert "unpatchify: 6 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", UNPATCHIFY_WRONG)
def test_wrong_unpatchify_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=re.escape(mistake)):
        checks.unpatchify(_fn(UNPATCHIFY_WRONG[mistake], "unpatchify"))


def _inverse_of(wrong_patchify):
    """The unpatchify that undoes ``wrong_patchify`` exactly: each value goes back to the pixel
    that ``wrong_patchify`` took it from (read off an image of pixel indices)."""
    def unpatchify(patches, patch_size):
        b, n, length = patches.shape
        c, side = length // patch_size ** 2, math.isqrt(n) * patch_size
        source = torch.arange(b * c * side * side).reshape(b, c, side, side)
        image = patches.new_empty(b * c * side * side)
        image[wrong_patchify(source, patch_size).flatten()] = patches.flatten()
        return image.reshape(b, c, side, side)
    return unpatchify


@pytest.mark.parametrize("mistake, words", [
    ("flattened channel first", "read each patch channel first"),
    ("column by column", "column by column"),
    ("pixels inside each patch are transposed", "pixels of each patch back transposed"),
    ("a plain reshape does not cut", "a plain reshape does not put"),
])
def test_the_inverse_of_each_patchify_mistake_is_named_by_the_unpatchify_check(mistake, words):
    wrong = _fn(PATCHIFY_WRONG[mistake], "patchify")
    inverse = _inverse_of(wrong)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(inverse(wrong(x, 4), 4), x)          # it does undo the wrong patchify
    with pytest.raises(CheckFailed, match=f"check 1/6 .*{re.escape(words)}"):
        checks.unpatchify(inverse)


@pytest.mark.parametrize("fn", [masking.random_masking, _fn(MASKING_RIGHT, "random_masking"),
                                _fn(MASKING_PERMUTATIONS, "random_masking")],
                         ids=["library", "argsort", "permutations"])
def test_correct_maskings_pass(fn, capsys):
    checks.random_masking(fn)
    assert "random_masking: 8 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", MASKING_WRONG)
def test_wrong_maskings_fail_at_their_case_naming_the_mistake(mistake):
    source, case = MASKING_WRONG[mistake]
    with pytest.raises(CheckFailed, match=f"check {case}/8 .*{re.escape(mistake)}"):
        checks.random_masking(_fn(source, "random_masking"))


def test_a_shuffle_not_inverted_with_a_mask_from_keep_idx_fails_at_the_unshuffling():
    source = MASKING_SCATTER.replace("ids_restore = ids_shuffle.argsort(dim=1)",
                                     "ids_restore = ids_shuffle")
    checks_passed = _fn(MASKING_SCATTER, "random_masking")
    checks.random_masking(checks_passed)   # the scatter formulation itself is right
    with pytest.raises(CheckFailed, match="check 5/8 .*shuffle itself, not its inverse"):
        checks.random_masking(_fn(source, "random_masking"))


def test_the_frequency_tolerance_is_five_binomial_standard_deviations():
    """A masking that hides patch 0 a little more often than the others passes when the excess
    is 3σ of the binomial frequency over the check's 4000 masks and fails at 7σ."""
    rows, q = 4000, 0.75
    sigma = math.sqrt(q * (1 - q) / rows)

    def biased(excess):
        def fn(batch_size, num_patches, mask_ratio, device=None):
            keep_idx, mask, ids_restore = masking.random_masking(batch_size, num_patches,
                                                                 mask_ratio, device=device)
            if batch_size != 400:           # only the frequency case is biased
                return keep_idx, mask, ids_restore
            # swap patch 0 into the hidden set of a fraction of the images where it is visible
            noise = torch.rand(batch_size)
            visible0 = ~mask[:, 0]
            flip = visible0 & (noise < excess / (1 - q))
            scores = torch.where(mask, 1.0, 0.0) + 0.5 * torch.rand(batch_size, num_patches)
            scores[flip, 0] = 2.0                       # patch 0 hidden…
            other = scores[flip].masked_fill(~mask[flip], 3.0).argmin(dim=1)
            scores[flip.nonzero().flatten(), other] = -1.0  # …and one hidden patch shown
            ids_shuffle = scores.argsort(dim=1)
            ids_restore = ids_shuffle.argsort(dim=1)
            n_keep = keep_idx.shape[1]
            return ids_shuffle[:, :n_keep], ids_restore >= n_keep, ids_restore
        return fn

    checks.random_masking(biased(3 * sigma))
    with pytest.raises(CheckFailed, match="check 7/8 .*patch 0 is hidden with frequency"):
        checks.random_masking(biased(7 * sigma))


def test_the_masking_check_leaves_the_global_random_state_as_it_was():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    checks.random_masking(masking.random_masking)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_stub_raises_only_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")
    for check in (checks.patchify, checks.unpatchify, checks.random_masking):
        with pytest.raises(NotImplementedError):
            check(stub)
