"""Tests of sslkit.views: per-sample randomness, exact geometry, colour ops against torchvision.

Tolerances are forward-error bounds, not measurements, so that they hold on any CPU (AVX2 or
AVX-512, any thread count) and device: a float32 rounding of ``x`` errs by at most
``|x| · EPS / 2``, and two evaluations that round differently (ours and torchvision's, chunked
and whole, CPU and GPU) may each be off by their own bound. Errors are counted in [0, 1] pixel
units and multiplied by ``1 / STD`` on normalised views.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from sslkit import views as V

EPS = torch.finfo(torch.float32).eps  # 2**-23
NORM = 1 / V.STD[0]  # normalised views carry [0, 1]-unit errors times 1 / STD = 4
# Elementwise paths (uint8 → float, × 1/255, the colour formulas without reductions, the
# normalising addcmul): ≤ 8 roundings of |x| ≤ 2 per path (≤ EPS each), 2 paths, × NORM.
ATOL = 2 * 8 * EPS * NORM  # 7.6e-6
# _hue: the hue in turns carries ≤ 9·EPS / (6·cr) from its sums (|x| ≤ 6, cr = max - min) and
# ≤ 4.5·EPS from the division and the turn offsets (|q| < 4); scaled back by 6·cr ≤ 6, plus the
# last multiply-add: ≤ (9 + 27 + 1) EPS. torchvision's _rgb_to_hsv → _hsv_to_rgb: ≤ 25·EPS.
HUE_OURS = 37 * EPS
HUE_ATOL = HUE_OURS + 25 * EPS  # 7.4e-6
# Linear ramps resampled (exact in exact arithmetic): per value, the grid dot (≤ 1.3·EPS) × 16
# px and ≤ 6 roundings of pixel coordinates < 32 (≤ 16·EPS each), at 1/31 per pixel: ≤ 3.8·EPS;
# the bilinear mix, the ramp itself and (un)normalising: ≤ 4.5·EPS. A difference of two values,
# or the mean of such differences and its hypot: ≤ 2 · 8.3·EPS + 1.5·EPS.
RAMP_ATOL = 18.1 * EPS  # 2.2e-6; a crop 0.1 % too wide changes the slope by 1.6e-5
# A recipe that changes nothing: whole image, no flip, no colour op.
IDENTITY = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0,
                grayscale_p=0.0)


def blur_atol(k: int) -> float:
    """Ours vs ``TF.gaussian_blur`` with a ``k × k`` kernel, [0, 1] units: torchvision's conv
    sums k² non-negative weights (≤ k²·EPS/2) whose outer product and normalisation err by
    ≤ (k + 4)·EPS/2; ours sums 2 × k taps and normalises 2 kernels (≤ (4k + 6)·EPS/2); plus
    normalising and unnormalising (≤ 2·EPS/2)."""
    return (k * k + 5 * k + 12) * EPS / 2


def pipeline_atol(recipe: V.Recipe, other_device: bool = False, in_size: int = 32) -> float:
    """How far two evaluations of ``V.augment(uint8_images, recipe)`` with the same random
    parameters may differ when their kernels round differently (another chunking, CPU or
    device), for normalised views. The rounding of both, in [0, 1] units, is carried through
    each op's ∞-norm Lipschitz constant.
    """
    rot = recipe.rotation_degrees > 0
    terms, reach = (3, math.sqrt(2)) if rot else (2, 1.0)  # theta @ M: terms, Σ|terms| ≤ reach
    grid = 2 * terms * reach * EPS / 2
    if other_device:  # theta's sqrt, exp, log, sin, cos: ≤ 4 ulp apart
        grid += 2 * 4 * reach * EPS
    # grid_sample: × W/2 to pixels, then unnormalising and reflecting round coordinates |x| < W
    # ≤ 6 times per path; uint8 neighbours differ by ≤ 1, on 2 axes; the bilinear mix: 4 more
    pixel = in_size / 2 * grid + 2 * 6 * in_size * EPS / 2
    err = 2 * pixel + 2 * 4 * EPS / 2
    if recipe.jitter_p > 0:
        b, c, s = recipe.brightness, recipe.contrast, recipe.saturation
        err = (1 + b) * err + 2 * EPS  # f·x with f ≤ 1 + b
        # f·x + (1 - f)·mean(gray): Lipschitz f + |1 - f| ≤ 1 + 2c; each path's mean of S²
        # pixels (and 3 channels) errs by ≤ (S² + 3)·EPS/2, times |1 - f| ≤ c
        err = (1 + 2 * c) * err + c * (recipe.size**2 + 3) * EPS + 2 * 2 * EPS
        err = (1 + 2 * s) * err + 2 * 4 * EPS  # saturation: the same with the pixel's gray
        if recipe.hue > 0:  # out channels are max, min, mid or max + min - mid: Lipschitz 3
            err = 3 * err + 2 * HUE_OURS
    if recipe.grayscale_p > 0:
        err += 2 * 3 * EPS / 2
    if recipe.blur_p > 0:  # weights ≥ 0 summing to 1: Lipschitz 1, rounding as in blur_atol
        k = 2 * V._blur_radius(recipe.blur_sigma[1], recipe.size) + 1
        err += 2 * (4 * k + 6) * EPS / 2
    if recipe.solarize_p > 0:  # x or 1 - x, continuous at the threshold: Lipschitz 1
        err += 2 * EPS / 2
    return NORM * err + 2 * EPS  # permutation and inversion are exact; the final addcmul


def images(n=8, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)


def normalise(x01):
    mean = torch.tensor(V.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(V.STD).view(1, 3, 1, 1)
    return (x01 - mean) / std


def unnormalise(y):
    return y * torch.tensor(V.STD).view(1, 3, 1, 1) + torch.tensor(V.MEAN).view(1, 3, 1, 1)


# ---------------------------------------------------------------- per-sample randomness


def test_identical_images_get_different_views():
    x = images(1).expand(64, -1, -1, -1).contiguous()
    out = V.augment(x, V.simclr_recipe(32, colour="none"), generator=0)
    distinct = {tuple(v.flatten()[::7].tolist()) for v in out}
    assert len(distinct) >= 60  # per-sample crop boxes (and flips)
    assert not torch.allclose(out[0], out[1])


def test_torchvision_on_a_batch_tensor_uses_one_parameter_set():
    """The contrast the course teaches: torchvision v2 applied to a (B, 3, H, W) tensor draws
    ONE crop (and one flip) for the whole batch, so identical images give identical views.
    That is why torchvision augmentations run per sample in DataLoader workers."""
    torch.manual_seed(0)
    x = images(1).expand(64, -1, -1, -1).contiguous()
    tv = T.Compose([T.RandomResizedCrop(32, scale=(0.08, 1.0), antialias=True),
                    T.RandomHorizontalFlip()])
    out = tv(x)
    # exact: one kernel call treats identical images identically (no mixing across images)
    assert all(torch.equal(out[0], v) for v in out)


def test_same_seed_same_views_different_seed_different():
    x = images(16)
    rec = V.simclr_recipe(32)
    a = V.augment(x, rec, generator=torch.Generator().manual_seed(3))
    b = V.augment(x, rec, generator=torch.Generator().manual_seed(3))
    c = V.augment(x, rec, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)  # same process, same kernels: bit-identical
    assert not torch.allclose(a, c)
    v1, v2 = V.two_views(x, rec, generator=5)  # one generator, two different draws
    assert not torch.allclose(v1, v2)


@pytest.mark.parametrize("seed", range(20))
def test_grayscale_of_a_whole_chunk_then_a_partial_blur(seed):
    """Grayscale may hand back a broadcast view when it selects every image of a chunk; a
    partial blur then writes into it in place. The views must come out gray, and differ from
    the unblurred ones only where an image was blurred."""
    x = images(2)
    gray = V.Recipe(size=32, grayscale_p=1.0, **{k: v for k, v in IDENTITY.items()
                                                 if k != "grayscale_p"})
    blurred = V.augment(x, dataclasses.replace(gray, blur_p=0.5), generator=seed)
    assert torch.equal(blurred[:, 0], blurred[:, 1]) and torch.equal(blurred[:, 1], blurred[:, 2])


def test_result_does_not_depend_on_cpu_chunking(monkeypatch):
    x = images(10)
    rec = V.Recipe(size=32, rotation_degrees=30.0, hue=0.5, channel_permute_p=0.5, invert_p=0.5,
                   blur_p=0.5, solarize_p=0.5)
    full = V.augment(x, rec, generator=1)
    monkeypatch.setattr(V.pipeline, "_CPU_CHUNK_ELEMS", 3 * 32 * 32 * 3)  # chunks of 3 images
    chunked = V.augment(x, rec, generator=1)
    # Same parameters; the grid GEMM, the contrast mean and the blur weights run on other
    # shapes, so they round differently. 4.6e-3 (0.1 % of the [-2, 2] range, 0.3 grey levels):
    # parameters taken from the wrong images or drawn per chunk move pixels by O(1).
    torch.testing.assert_close(chunked, full, atol=pipeline_atol(rec), rtol=0)


# ---------------------------------------------------------------- geometry


def test_identity_recipe_equals_to_float():
    x = images(8)
    out = V.augment(x, V.Recipe(size=32, **IDENTITY), generator=0)
    torch.testing.assert_close(out, V.to_float(x), atol=ATOL, rtol=0)
    torch.testing.assert_close(V.to_float(x), normalise(x / 255.0), atol=ATOL, rtol=0)
    # float input in [0, 1] takes the same path
    torch.testing.assert_close(V.augment(x / 255.0, V.Recipe(size=32, **IDENTITY)),
                               V.to_float(x), atol=ATOL, rtol=0)


def test_flip():
    x = images(8)
    out = V.augment(x, V.Recipe(size=32, **{**IDENTITY, "flip_p": 1.0}), generator=0)
    torch.testing.assert_close(out, V.to_float(x).flip(-1), atol=ATOL, rtol=0)


def ramps(n=4, size=32):
    """Red channel = column index / (size-1), green = row index / (size-1): linear in x and y."""
    t = torch.arange(size, dtype=torch.float32) / (size - 1)
    x = torch.zeros(n, 3, size, size)
    x[:, 0] = t.view(1, 1, size)
    x[:, 1] = t.view(1, size, 1)
    return x


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_crop_box_has_the_sampled_area_and_ratio(ratio):
    """Bilinear resampling of a linear ramp is exact, so the slope of the output is the crop
    width (or height) as a fraction of the image: sqrt(area * ratio) and sqrt(area / ratio)."""
    rec = V.Recipe(size=32, crop_scale=(0.25, 0.25), crop_ratio=(ratio, ratio), flip_p=0.0,
                   jitter_p=0.0, grayscale_p=0.0)
    out = unnormalise(V.augment(ramps(), rec, generator=0))
    inner = slice(2, 30)  # away from the half-pixel border band, where samples are clamped
    dx = out[:, 0, inner, inner].diff(dim=-1)
    dy = out[:, 1, inner, inner].diff(dim=-2)
    torch.testing.assert_close(dx, torch.full_like(dx, math.sqrt(0.25 * ratio) / 31),
                               atol=RAMP_ATOL, rtol=0)
    torch.testing.assert_close(dy, torch.full_like(dy, math.sqrt(0.25 / ratio) / 31),
                               atol=RAMP_ATOL, rtol=0)


def test_rotation_turns_the_ramp():
    rec = V.Recipe(size=32, **{**IDENTITY, "crop_scale": (0.25, 0.25)}, rotation_degrees=90.0)
    out = unnormalise(V.augment(ramps(16), rec, generator=0))
    dx = out[:, 0, 10:22, 10:22].diff(dim=-1).mean((1, 2))  # d(red)/d(column) = 0.5 cos(angle)
    dy = out[:, 0, 10:22, 10:22].diff(dim=-2).mean((1, 2))  # d(red)/d(row) = 0.5 sin(angle)
    torch.testing.assert_close(dx.hypot(dy), torch.full_like(dx, 0.5 / 31), atol=RAMP_ATOL,
                               rtol=0)  # inside the image: no mirrored samples in 10:22
    assert dx.std() > 0.1 / 31  # the angle differs from image to image


# ---------------------------------------------------------------- colour ops vs torchvision


def float_images(n=6, size=16, seed=0):
    return images(n, size, seed).float() / 255.0


# Contrast: both means of 16·16 pixels (ours per channel, then the 3 gray weights; torchvision's
# per pixel, then the mean) err by ≤ (256 + 3)·EPS/2 each, times |1 - f| ≤ 0.8; + the blend.
CONTRAST_ATOL = 0.8 * (16 * 16 + 3) * EPS + ATOL  # 3.2e-5


@pytest.mark.parametrize(
    "ours, theirs, factors, atol",
    [
        (V._brightness, TF.adjust_brightness, [0.3, 1.0, 1.7], ATOL),
        (V._contrast, TF.adjust_contrast, [0.2, 1.0, 1.8], CONTRAST_ATOL),
        (V._saturation, TF.adjust_saturation, [0.0, 0.5, 1.9], ATOL),
        (V._hue, TF.adjust_hue, [-0.5, -0.2, 0.0, 0.1, 0.37, 0.5], HUE_ATOL),
    ],
)
def test_colour_op_matches_torchvision(ours, theirs, factors, atol):
    x = float_images(len(factors))
    assert x.shape[-1] == 16  # CONTRAST_ATOL counts 16·16 pixels
    got = ours(x.clone(), torch.tensor(factors))  # one factor per image, in one call
    want = torch.stack([theirs(img, f) for img, f in zip(x, factors, strict=True)])
    torch.testing.assert_close(got, want, atol=atol, rtol=0)


def test_hue_keeps_gray_and_turns_red_to_cyan():
    gray = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)).expand(-1, 3, -1, -1)
    out = V._hue(gray.contiguous(), torch.tensor([-0.5, -0.1, 0.25, 0.5]))
    torch.testing.assert_close(out, gray, atol=HUE_OURS, rtol=0)
    red = torch.zeros(2, 3, 4, 4)
    red[:, 0] = 1.0
    cyan = torch.zeros(2, 3, 4, 4)
    cyan[:, 1:] = 1.0
    torch.testing.assert_close(V._hue(red, torch.tensor([0.5, -0.5])), cyan, atol=HUE_OURS,
                               rtol=0)


def test_brightness_scales_and_clamps():
    x = float_images(2)
    out = V._brightness(x.clone(), torch.tensor([0.5, 2.0]))  # powers of 2: exact products
    torch.testing.assert_close(out[0], x[0] * 0.5)
    torch.testing.assert_close(out[1], (x[1] * 2.0).clamp(max=1.0))


def test_jitter_factors_are_per_sample_and_jitter_p_selects():
    x = images(32)
    rec = V.Recipe(size=32, **{**IDENTITY, "jitter_p": 1.0}, brightness=0.5, contrast=0.0,
                   saturation=0.0, hue=0.0)
    ratio = unnormalise(V.augment(x, rec, generator=0)) / (x / 255.0).clamp_min(1e-3)
    # only pixels not clamped at 1 keep the ratio; take the smallest pixel values' ratio per image
    dark = (x / 255.0 < 0.6) & (x > 10)
    factor = torch.stack([r[d].median() for r, d in zip(ratio, dark, strict=True)])
    # ratio of values ≥ 11/255 that err by ≤ ATOL: ≤ ATOL · 255/11 = 1.8e-4 < 1e-3
    assert factor.min() >= 0.5 - 1e-3 and factor.max() <= 1.5 + 1e-3
    assert factor.std() > 0.15  # different factors per image (uniform on [0.5, 1.5]: std 0.29)
    off = V.Recipe(size=32, **{**IDENTITY, "jitter_p": 0.0}, brightness=0.8, hue=0.5)
    torch.testing.assert_close(V.augment(x, off, generator=0), V.to_float(x), atol=ATOL, rtol=0)


def test_grayscale_gives_equal_channels():
    x = images(8)
    out = unnormalise(V.augment(x, V.Recipe(size=32, **{**IDENTITY, "grayscale_p": 1.0})))
    want = TF.rgb_to_grayscale(x.float() / 255.0, num_output_channels=3)
    torch.testing.assert_close(out, want, atol=ATOL, rtol=0)
    # exact: one gray value per pixel, and every channel's normalisation (× 4, exact, - 2)
    # and unnormalisation (× 0.25, exact, + 0.5) round it the same way
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


@pytest.mark.parametrize("op", ["grayscale_p", "solarize_p", "blur_p", "jitter_p"])
def test_probability_selects_a_subset_of_images(op):
    x = images(64)
    rec = V.Recipe(size=32, **{**IDENTITY, op: 0.5}, brightness=0.5, hue=0.2)
    out = V.augment(x, rec, generator=0)
    unchanged = (out - V.to_float(x)).abs().amax((1, 2, 3)) < ATOL
    assert 16 <= unchanged.sum() <= 48
    if op == "grayscale_p":  # the others are exactly gray
        gray = V.to_float(TF.rgb_to_grayscale(x / 255.0, num_output_channels=3))
        changed = ~unchanged
        assert (out[changed, 0] == out[changed, 1]).all()  # exact, as in the test above
        torch.testing.assert_close(out[changed], gray[changed], atol=ATOL, rtol=0)


def test_solarize_inverts_pixels_above_threshold():
    x = images(8)
    out = unnormalise(V.augment(x, V.Recipe(size=32, **IDENTITY, solarize_p=1.0)))
    x01 = x / 255.0
    want = torch.where(x01 >= 0.5, 1.0 - x01, x01)
    torch.testing.assert_close(out, want, atol=ATOL, rtol=0)
    torch.testing.assert_close(out, TF.solarize(x01, 0.5), atol=ATOL, rtol=0)


def test_blur_matches_torchvision_gaussian_blur():
    x = images(6)
    for sigma in (0.6, 1.5):
        rec = V.Recipe(size=32, **IDENTITY, blur_p=1.0, blur_sigma=(sigma, sigma))
        k = 2 * V._blur_radius(sigma, 32) + 1
        want = TF.gaussian_blur(x / 255.0, [k, k], [sigma, sigma])
        torch.testing.assert_close(unnormalise(V.augment(x, rec)), want, atol=blur_atol(k),
                                   rtol=0)  # 1.1e-5 at k = 11; a σ 10 % off moves pixels 1e-2
    # per-sample sigma: a sharper image keeps more of its pixel-to-pixel variation
    rec = V.Recipe(size=32, **IDENTITY, blur_p=1.0, blur_sigma=(0.2, 2.0))
    same = images(1).expand(32, -1, -1, -1)
    rough = V.augment(same, rec, generator=0).diff(dim=-1).std((1, 2, 3))
    assert rough.max() > 2 * rough.min()


def test_channel_permutation_and_inversion():
    x = images(16)
    ref = V.to_float(x)
    out = V.augment(x, V.Recipe(size=32, **IDENTITY, channel_permute_p=1.0), generator=0)
    used = set()
    for o, r in zip(out, ref, strict=True):
        perms = [p for p in itertools.permutations(range(3))
                 if torch.allclose(o, r[list(p)], rtol=0, atol=ATOL)]
        assert len(perms) == 1 and perms[0] != (0, 1, 2)
        used.add(perms[0])
    assert len(used) >= 3
    inv = V.augment(x, V.Recipe(size=32, **IDENTITY, invert_p=1.0))
    torch.testing.assert_close(inv, V.to_float(255 - x), atol=ATOL, rtol=0)


# ---------------------------------------------------------------- shapes, recipes, devices


ALL_RECIPES = [V.simclr_recipe(32, colour=c) for c in ("strong", "standard", "none")]
ALL_RECIPES += [*V.byol_recipes(32), *V.dino_recipes(32, 16), V.simclr_recipe(24, 0.5)]


@pytest.mark.parametrize("recipe", ALL_RECIPES)
def test_shapes_dtype_and_range(recipe):
    x = images(5, 40)
    out = V.augment(x, recipe, generator=0)
    assert out.shape == (5, 3, recipe.size, recipe.size) and out.dtype == torch.float32
    x01 = unnormalise(out)
    # every op keeps [0, 1] (clamps, convex mixes); only rounding may step out: ≤ ATOL
    assert x01.min() >= -ATOL and x01.max() <= 1 + ATOL


def test_two_views_multi_crop_and_to_float_shapes():
    x = images(4)
    g1, g2, loc = V.dino_recipes(32, 16)
    v1, v2 = V.two_views(x, *V.byol_recipes(32), generator=0)
    assert v1.shape == v2.shape == (4, 3, 32, 32)
    crops = V.multi_crop(x, [g1, g2], loc, n_local=6, generator=0)
    assert [tuple(c.shape) for c in crops] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)] * 6
    assert not torch.allclose(crops[2], crops[3])  # local crops differ from each other
    assert len(V.multi_crop(x, g1, loc, n_local=0)) == 1
    assert V.to_float(x, size=16).shape == (4, 3, 16, 16)
    big = V.augment(images(2, 128), V.simclr_recipe(32), generator=0)  # pre-shrunk path
    assert big.shape == (2, 3, 32, 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_stays_on_the_gpu_and_matches_cpu():
    x = images(8)
    rec = V.simclr_recipe(32)
    gpu = V.augment(x.cuda(), rec, generator=torch.Generator().manual_seed(0))  # CPU generator
    assert gpu.device.type == "cuda"
    cpu = V.augment(x, rec, generator=torch.Generator().manual_seed(0))
    # every kernel sums in another order and theta's sqrt/exp/log differ: 1.5e-2 (0.4 % of the
    # [-2, 2] range, one grey level); a mask or factor on the wrong images moves pixels by O(1)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=pipeline_atol(rec, other_device=True),
                               rtol=0)


def test_device_stays_cpu():
    assert V.augment(images(2), V.simclr_recipe(32)).device == torch.device("cpu")


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(size=0), "size"),
        (dict(crop_scale=(0.0, 1.0)), "crop_scale"),
        (dict(crop_scale=(0.2, 1.5)), "crop_scale"),
        (dict(crop_scale=(0.9, 0.5)), "crop_scale"),
        (dict(crop_ratio=(0.0, 1.0)), "crop_ratio"),
        (dict(crop_ratio=(2.0, 1.0)), "crop_ratio"),
        (dict(flip_p=-0.1), "flip_p"),
        (dict(jitter_p=1.2), "jitter_p"),
        (dict(grayscale_p=2), "grayscale_p"),
        (dict(blur_p=-1), "blur_p"),
        (dict(solarize_p=1.01), "solarize_p"),
        (dict(channel_permute_p=-0.5), "channel_permute_p"),
        (dict(invert_p=3.0), "invert_p"),
        (dict(brightness=-0.1), "brightness"),
        (dict(contrast=-1.0), "contrast"),
        (dict(saturation=float("nan")), "saturation"),
        (dict(hue=0.6), "hue"),
        (dict(hue=-0.1), "hue"),
        (dict(blur_sigma=(0.0, 1.0)), "blur_sigma"),
        (dict(rotation_degrees=-5), "rotation_degrees"),
        (dict(rotation_degrees=270), "rotation_degrees"),
        (dict(solarize_threshold=1.5), "solarize_threshold"),
    ],
)
def test_invalid_recipe_raises_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}=.*invalid"):
        V.Recipe(**kwargs)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="colour="):
        V.simclr_recipe(colour="vivid")
    with pytest.raises(ValueError, match=r"strength=-1.*\[0, inf"):
        V.simclr_recipe(strength=-1.0)
    with pytest.raises(ValueError, match="local_size="):
        V.dino_recipes(32, 0)
    with pytest.raises(ValueError, match="n_local="):
        V.multi_crop(images(2), V.simclr_recipe(), V.simclr_recipe(16), n_local=-1)
    with pytest.raises(ValueError, match="images="):
        V.augment(torch.zeros(3, 32, 32, dtype=torch.uint8), V.simclr_recipe())
    with pytest.raises(ValueError, match="size="):
        V.to_float(images(1), size=0)
    with pytest.raises(ValueError, match="generator="):
        V.augment(images(1), V.simclr_recipe(), generator="seed")


def test_to_uint8_inverts_to_float_and_rejects_uint8():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(V.to_uint8(V.to_float(images)), images)
    # out-of-range values (a view after strong jitter) are clipped, not wrapped around
    assert V.to_uint8(torch.full((1, 3, 2, 2), 10.0)).min().item() == 255
    with pytest.raises(ValueError, match="float tensor"):
        V.to_uint8(images)
