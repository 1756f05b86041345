"""Tests of sslkit.views: per-sample randomness, exact geometry, colour ops against torchvision.

Colour ops are compared with ``torchvision.transforms.v2.functional`` on float images in [0, 1]
with ``atol=1e-5``: both compute in float32 with the same formulas, so only rounding differs
(the hue uses a different but exact closed form of HSV → RGB, ≈ 1e-6 apart).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from sslkit import views as V

ATOL = 1e-5
# A recipe that changes nothing: whole image, no flip, no colour op.
IDENTITY = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0,
                grayscale_p=0.0)


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
    assert all(torch.equal(out[0], v) for v in out)


def test_same_seed_same_views_different_seed_different():
    x = images(16)
    rec = V.simclr_recipe(32)
    a = V.augment(x, rec, generator=torch.Generator().manual_seed(3))
    b = V.augment(x, rec, generator=torch.Generator().manual_seed(3))
    c = V.augment(x, rec, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    v1, v2 = V.two_views(x, rec, generator=5)  # one generator, two different draws
    assert not torch.allclose(v1, v2)


def test_result_does_not_depend_on_cpu_chunking(monkeypatch):
    x = images(10)
    rec = V.Recipe(size=32, rotation_degrees=30.0, hue=0.5, channel_permute_p=0.5, invert_p=0.5,
                   blur_p=0.5, solarize_p=0.5)
    full = V.augment(x, rec, generator=1)
    monkeypatch.setattr(V.pipeline, "_CPU_CHUNK_ELEMS", 3 * 32 * 32 * 3)  # chunks of 3 images
    chunked = V.augment(x, rec, generator=1)
    torch.testing.assert_close(chunked, full, atol=ATOL, rtol=0)  # only sum order differs


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
    torch.testing.assert_close(dx, torch.full_like(dx, math.sqrt(0.25 * ratio) / 31), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(dy, torch.full_like(dy, math.sqrt(0.25 / ratio) / 31), atol=1e-5,
                               rtol=0)


def test_rotation_turns_the_ramp():
    rec = V.Recipe(size=32, **{**IDENTITY, "crop_scale": (0.25, 0.25)}, rotation_degrees=90.0)
    out = unnormalise(V.augment(ramps(16), rec, generator=0))
    dx = out[:, 0, 10:22, 10:22].diff(dim=-1).mean((1, 2))  # d(red)/d(column) = 0.5 cos(angle)
    dy = out[:, 0, 10:22, 10:22].diff(dim=-2).mean((1, 2))  # d(red)/d(row) = 0.5 sin(angle)
    torch.testing.assert_close(dx.hypot(dy), torch.full_like(dx, 0.5 / 31), atol=1e-4, rtol=0)
    assert dx.std() > 0.1 / 31  # the angle differs from image to image


# ---------------------------------------------------------------- colour ops vs torchvision


def float_images(n=6, size=16, seed=0):
    return images(n, size, seed).float() / 255.0


@pytest.mark.parametrize(
    "ours, theirs, factors",
    [
        (V._brightness, TF.adjust_brightness, [0.3, 1.0, 1.7]),
        (V._contrast, TF.adjust_contrast, [0.2, 1.0, 1.8]),
        (V._saturation, TF.adjust_saturation, [0.0, 0.5, 1.9]),
        (V._hue, TF.adjust_hue, [-0.5, -0.2, 0.0, 0.1, 0.37, 0.5]),
    ],
)
def test_colour_op_matches_torchvision(ours, theirs, factors):
    x = float_images(len(factors))
    got = ours(x.clone(), torch.tensor(factors))  # one factor per image, in one call
    want = torch.stack([theirs(img, f) for img, f in zip(x, factors, strict=True)])
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_hue_keeps_gray_and_turns_red_to_cyan():
    gray = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)).expand(-1, 3, -1, -1)
    out = V._hue(gray.contiguous(), torch.tensor([-0.5, -0.1, 0.25, 0.5]))
    torch.testing.assert_close(out, gray, atol=1e-6, rtol=0)
    red = torch.zeros(2, 3, 4, 4)
    red[:, 0] = 1.0
    cyan = torch.zeros(2, 3, 4, 4)
    cyan[:, 1:] = 1.0
    torch.testing.assert_close(V._hue(red, torch.tensor([0.5, -0.5])), cyan, atol=1e-6, rtol=0)


def test_brightness_scales_and_clamps():
    x = float_images(2)
    out = V._brightness(x.clone(), torch.tensor([0.5, 2.0]))
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
    assert factor.min() >= 0.5 - 1e-3 and factor.max() <= 1.5 + 1e-3
    assert factor.std() > 0.15  # different factors per image (uniform on [0.5, 1.5]: std 0.29)
    off = V.Recipe(size=32, **{**IDENTITY, "jitter_p": 0.0}, brightness=0.8, hue=0.5)
    torch.testing.assert_close(V.augment(x, off, generator=0), V.to_float(x), atol=ATOL, rtol=0)


def test_grayscale_gives_equal_channels():
    x = images(8)
    out = unnormalise(V.augment(x, V.Recipe(size=32, **{**IDENTITY, "grayscale_p": 1.0})))
    want = TF.rgb_to_grayscale(x.float() / 255.0, num_output_channels=3)
    torch.testing.assert_close(out, want, atol=ATOL, rtol=0)
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
        assert (out[changed, 0] == out[changed, 1]).all()
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
        torch.testing.assert_close(unnormalise(V.augment(x, rec)), want, atol=ATOL, rtol=0)
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
        perms = [p for p in itertools.permutations(range(3)) if torch.allclose(o, r[list(p)])]
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
    assert x01.min() >= -1e-5 and x01.max() <= 1 + 1e-5


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
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


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
