"""Tests of ``sslkit.data``: ShapeWorld rendering, factors, captions, splits and real datasets.

Every test runs in well under a second on two cores: images are 32×32 and batches small.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import os
import socket
import struct
import urllib.error

import numpy as np
import pytest
import torch
from real_data_helpers import CIFAR_NAMES, skip_md5, write_cifar, write_stl

from sslkit import data
from sslkit.data import (
    BACKGROUNDS,
    CLASSES,
    DatasetNotFoundError,
    ShapeWorldConfig,
    load_real,
    preset,
    render,
    shapeworld_splits,
)

# A config whose pixels are easy to reason about: flat backgrounds, no noise, no clutter.
CLEAN = dict(backgrounds=("flat",), noise_std=0.0, max_distractors=0)


def _centroids(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask centroids in pixels (x = column, y = row, pixel centres at +0.5): (n,), (n,)."""
    S = masks.shape[-1]
    coords = torch.arange(S, dtype=torch.float64) + 0.5
    m = masks.double()
    area = m.sum((1, 2))
    cx = (m.sum(1) * coords).sum(1) / area
    cy = (m.sum(2) * coords).sum(1) / area
    return cx, cy


def _core(masks: torch.Tensor) -> torch.Tensor:
    """Mask pixels whose 3×3 neighbourhood is in the mask: fully covered by the object."""
    padded = torch.nn.functional.pad(masks.float()[:, None], (1, 1, 1, 1))
    return torch.nn.functional.max_pool2d(1 - padded, 3, stride=1)[:, 0] == 0


# ---------------------------------------------------------------- hashing
def test_mix64_matches_the_python_reference():
    values = [0, 1, 2, 12345, (1 << 63) - 1, -1, -(1 << 63), -987654321, 0x0123456789ABCDEF]
    z = torch.tensor(values, dtype=torch.int64)
    got = data._mix64(z.clone()).tolist()
    want = [data._signed64(data._mix64_int(v)) for v in values]
    assert got == want
    assert data._mix64_int(0) == 0  # splitmix64's finaliser fixes 0 (why keys are offset)


def test_uniforms_are_uniform_and_independent_of_the_batch():
    idx = torch.arange(20_000, dtype=torch.int64)
    u = data._unit64(data._sample_hashes(7, idx, 3))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01
    assert abs(u.var().item() - 1 / 12) < 0.003
    assert abs(torch.corrcoef(u.T)[0, 1].item()) < 0.03  # streams are not correlated
    sub = data._unit64(data._sample_hashes(7, idx[1234:1240], 3))
    assert torch.equal(sub, u[1234:1240])


# ---------------------------------------------------------------- classes and shapes
def test_at_least_ten_distinct_classes_each_with_an_sdf():
    assert len(CLASSES) >= 10
    assert len(set(CLASSES)) == len(CLASSES)
    assert set(data._SDF) == set(CLASSES)


def _grid(n: int = 241, extent: float = 1.2):
    g = torch.linspace(-extent, extent, n)
    y, x = torch.meshgrid(-g, g, indexing="ij")
    return x, y, (2 * extent / (n - 1)) ** 2


def test_every_shape_fits_the_unit_disc_and_is_centred():
    x, y, cell = _grid()
    for name, sdf in data._SDF.items():
        inside = sdf(x, y) < 0
        area = inside.sum().item() * cell
        assert area > 0.6, name  # not degenerate (the unit disc has area π)
        r = torch.sqrt(x[inside] ** 2 + y[inside] ** 2)
        assert r.max() <= 0.97, name
        assert abs(x[inside].mean().item()) < 0.02 and abs(y[inside].mean().item()) < 0.02, name


def test_sdf_is_a_distance_near_the_edge():
    # |∇d| ≈ 1 where the anti-aliasing reads it (within a pixel of the edge), away from corners
    x, y, _ = _grid(481)
    h = 2.4 / 480
    for name, sdf in data._SDF.items():
        d = sdf(x, y)
        gy, gx = torch.gradient(d, spacing=h)
        g = torch.sqrt(gx**2 + gy**2)[(d.abs() < 0.05)]
        assert (g - 1).abs().median() < 0.02, name


def _circle_signature(sdf, angle: float = 0.0):
    """Rotation-invariant signature of a shape: on circles of radius 0.05..0.95 around the
    centre, the covered fraction and the number of separate inside arcs: (19,), (19,)."""
    radii = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)[:, None]
    theta = torch.linspace(0, 2 * math.pi, 1441, dtype=torch.float64)[None, :-1] + angle
    inside = sdf((radii * torch.cos(theta)).float(), (radii * torch.sin(theta)).float()) < 0
    starts = (inside & ~torch.roll(inside, 1, dims=1)).sum(1)
    return inside.double().mean(1), starts


def _same_up_to_rotation(a, b) -> bool:
    (cov_a, arcs_a), (cov_b, arcs_b) = a, b
    return bool((cov_a - cov_b).abs().max() < 0.03 and (arcs_a != arcs_b).sum() <= 1)


def test_no_class_is_a_rotation_of_another():
    signatures = {name: _circle_signature(sdf) for name, sdf in data._SDF.items()}
    # negative control: a square turned by 45° (a "diamond") has the square's signature
    assert _same_up_to_rotation(signatures["square"], _circle_signature(data._sd_square, 0.785))
    names = list(signatures)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _same_up_to_rotation(signatures[a], signatures[b]), (a, b)


# ---------------------------------------------------------------- render: determinism
@pytest.mark.parametrize("name", ["easy", "hard"])
def test_render_is_a_pure_function_of_seed_and_index(name):
    cfg = preset(name)
    full = render(cfg, 40, seed=3, chunk_size=16)
    part = render(cfg, 10, seed=3, start=25, chunk_size=3)
    again = render(cfg, 40, seed=3, chunk_size=7)
    for other, sl in ((part, slice(25, 35)), (again, slice(None))):
        assert torch.equal(full.images[sl], other.images)
        assert torch.equal(full.masks[sl], other.masks)
        assert torch.equal(full.labels[sl], other.labels)
        for k, v in full.factors.items():
            assert torch.equal(v[sl], other.factors[k]), k


def test_different_seeds_give_different_images():
    a = render("hard", 20, seed=0)
    b = render("hard", 20, seed=1)
    assert torch.equal(a.labels, b.labels)
    differ = (a.images != b.images).flatten(1).any(1)
    assert differ.all()
    assert not torch.equal(a.factors["scale"], b.factors["scale"])


def test_output_types_shapes_and_labels():
    batch = render(preset("standard", image_size=24), 23, start=7)
    assert batch.images.shape == (23, 3, 24, 24) and batch.images.dtype == torch.uint8
    assert batch.masks.shape == (23, 24, 24) and batch.masks.dtype == torch.bool
    assert batch.labels.dtype == torch.int64
    assert batch.labels.tolist() == [(7 + i) % 10 for i in range(23)]
    assert set(batch.factors) >= {
        "class", "hue", "saturation", "value", "scale", "x", "y", "rotation", "background",
        "background_hue", "n_distractors", "noise",
    }
    assert all(v.shape == (23,) for v in batch.factors.values())
    assert torch.equal(batch.factors["class"], batch.labels)
    assert len(batch) == 23 and len(batch[3:8]) == 5 and len(batch[4]) == 1
    assert torch.equal(batch[3:8].images, batch.images[3:8])
    assert batch[3:8].captions() == batch.captions()[3:8]
    empty = render("easy", 0)
    assert empty.images.shape == (0, 3, 32, 32) and empty.captions() == []


def test_labels_are_balanced():
    for start in (0, 3):
        labels = render("easy", 100, start=start).labels
        assert torch.bincount(labels, minlength=10).tolist() == [10] * 10


def test_a_subset_of_classes_relabels_from_zero():
    cfg = preset("easy", classes=("star", "ring", "cross"))
    batch = render(cfg, 6)
    assert batch.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert batch.classes == ("star", "ring", "cross")
    # a ring has a hole: its centre pixel is outside the mask; a star's and a cross's is inside
    S = cfg.image_size
    cx, cy = (batch.factors["x"] * S).long(), (batch.factors["y"] * S).long()
    centre = batch.masks[torch.arange(6), cy, cx]
    assert centre.tolist() == [True, False, True, True, False, True]


# ---------------------------------------------------------------- masks and factors
def test_masks_agree_with_the_geometry_factors():
    cfg = preset("hard", **CLEAN)
    batch = render(cfg, 200, seed=5)
    S = cfg.image_size
    r = batch.factors["scale"].double() * S / 2
    cx, cy = _centroids(batch.masks)
    # centroid at (x, y): the shapes are centred on their centroid
    err = torch.hypot(cx - batch.factors["x"].double() * S, cy - batch.factors["y"].double() * S)
    assert (err < 0.08 * r + 0.6).all(), err.max()
    # nothing outside the bounding radius
    px = torch.arange(S, dtype=torch.float64) + 0.5
    dist = torch.hypot(
        px[None, None, :] - (batch.factors["x"].double() * S)[:, None, None],
        px[None, :, None] - (batch.factors["y"].double() * S)[:, None, None],
    )
    assert not (batch.masks & (dist > r[:, None, None] + 0.5)).any()
    # area grows with scale, class by class (∝ scale², up to pixel rounding)
    area = batch.masks.sum((1, 2)).double()
    for k in range(10):
        sel = batch.labels == k
        ratio = area[sel] / r[sel] ** 2
        assert ratio.std() / ratio.mean() < 0.12, CLASSES[k]
        order = torch.argsort(r[sel])
        assert area[sel][order][-1] > area[sel][order][0]


def test_mask_area_matches_the_continuous_area():
    # circle of radius 0.78 r: π (0.78 r)² pixels
    cfg = preset("easy", classes=("circle", "ring"), **CLEAN)
    batch = render(cfg, 40, seed=2)
    sel = batch.labels == 0
    r = batch.factors["scale"][sel].double() * 16
    area = batch.masks[sel].sum((1, 2)).double()
    assert ((area / (math.pi * (0.78 * r) ** 2)) - 1).abs().max() < 0.08


def test_pixels_inside_the_mask_have_the_object_colour():
    cfg = preset("hard", **CLEAN)
    batch = render(cfg, 60, seed=11)
    f = batch.factors
    core = _core(batch.masks)
    for i in range(len(batch)):
        rgb = colorsys.hsv_to_rgb(f["hue"][i].item(), f["saturation"][i].item(),
                                  f["value"][i].item())
        want = torch.tensor([round(255 * c) for c in rgb], dtype=torch.int16)
        pix = batch.images[i].permute(1, 2, 0)[core[i]].to(torch.int16)
        assert len(pix) > 5
        assert (pix - want).abs().max() <= 1, i


def test_distractors_are_drawn_but_never_part_of_the_mask():
    plain = render(preset("hard", max_distractors=0), 50, seed=4)
    clutter = render(preset("hard", max_distractors=3), 50, seed=4)
    assert torch.equal(plain.masks, clutter.masks)
    n = clutter.factors["n_distractors"]
    assert set(n.tolist()) <= {0, 1, 2, 3} and n.max() == 3 and n.min() == 0
    changed = (plain.images != clutter.images).flatten(1).any(1)
    assert not changed[n == 0].any()  # nothing else depends on max_distractors
    assert changed[n > 0].float().mean() > 0.9  # (a blob can hide under the object)
    assert (plain.factors["n_distractors"] == 0).all()


def test_the_object_is_on_top_of_the_clutter():
    cfg = preset("hard", max_distractors=3, noise_std=0.0)
    batch = render(cfg, 40, seed=9)
    core = _core(batch.masks)
    for i in range(len(batch)):
        pix = batch.images[i].permute(1, 2, 0)[core[i]]
        assert (pix == pix[0]).all()  # uniform object colour, whatever lies beneath


def test_upright_config_has_zero_rotation_and_upright_shapes():
    cfg = preset("easy", max_rotation=0.0, **CLEAN)
    batch = render(cfg, 30)
    assert (batch.factors["rotation"] == 0).all()
    # an upright triangle (label 1) is wider at the bottom than at the top
    for i in (batch.labels == 1).nonzero().squeeze(1).tolist():
        rows = batch.masks[i].sum(1)
        filled = rows.nonzero().squeeze(1)
        assert rows[filled[-1]] > rows[filled[0]]
    limited = render(preset("easy", max_rotation=0.5), 200).factors["rotation"]
    assert limited.abs().max() <= 0.5 and limited.abs().max() > 0.4


def test_scale_and_position_ranges_are_respected():
    cfg = preset("hard", scale_range=(0.5, 0.6), position_jitter=0.05)
    f = render(cfg, 200).factors
    assert f["scale"].min() >= 0.5 and f["scale"].max() <= 0.6
    assert (f["x"] - 0.5).abs().max() <= 0.05 + 1e-6 and (f["y"] - 0.5).abs().max() <= 0.05 + 1e-6
    centred = render(preset("hard", position_jitter=0.0), 20).factors
    assert (centred["x"] == 0.5).all() and (centred["y"] == 0.5).all()


def test_fixed_colour_and_fixed_background():
    cfg = preset("easy", colour=False, fixed_colour=(1.0, 0.0, 0.0), background_colour=False,
                 **CLEAN)
    batch = render(cfg, 20)
    assert torch.equal(batch.images[:, :, 0, 0], torch.tensor([[38, 38, 38]] * 20,
                                                                dtype=torch.uint8))
    assert (batch.factors["hue"] == 0).all() and (batch.factors["saturation"] == 1).all()


def test_each_background_kind_appears_and_looks_like_itself():
    # flat: a corner far from the object is one colour; textures vary across the image
    for kind in BACKGROUNDS:
        cfg = preset("hard", backgrounds=(kind,), noise_std=0.0, max_distractors=0,
                     scale_range=(0.3, 0.3), position_jitter=0.0)
        batch = render(cfg, 10)
        assert (batch.factors["background"] == BACKGROUNDS.index(kind)).all()
        border = torch.cat([batch.images[:, :, :6].flatten(2), batch.images[:, :, -6:].flatten(2)],
                           dim=2)
        spread = (border.amax(2) - border.amin(2)).amax(1).float()  # per image, max over RGB
        if kind == "flat":
            assert (spread == 0).all()
        else:
            assert (spread >= 8).float().mean() >= 0.8, kind
    mixed = render("hard", 300).factors["background"]
    assert torch.bincount(mixed, minlength=5).min() > 30


def test_noise_has_the_recorded_standard_deviation():
    cfg = preset("easy", background_colour=False, colour=False, noise_std=0.05,
                 scale_range=(0.3, 0.3), position_jitter=0.0, backgrounds=("flat",))
    batch = render(cfg, 40, seed=1)
    border = batch.images[:, :, :6].flatten(1).double() / 255  # 3×6×32 pixels of flat grey
    sigma = batch.factors["noise"].double()
    assert sigma.min() >= 0 and sigma.max() <= 0.05
    keep = sigma > 0.02  # where quantisation (1/255) does not dominate
    measured = border.std(1)[keep]
    expected = torch.sqrt(sigma[keep] ** 2 + 1 / 255**2 / 12)
    assert ((measured / expected) - 1).abs().mean() < 0.08
    assert abs((border.mean(1) - 0.15).mean().item()) < 0.004  # zero-mean noise
    quiet = render(preset("easy", noise_std=0.0, backgrounds=("flat",)), 5)
    assert (quiet.factors["noise"] == 0).all()


# ---------------------------------------------------------------- captions
def test_captions_follow_the_factors():
    batch = render("hard", 300, seed=2)
    caps = batch.captions()
    f = batch.factors
    assert all(cap.startswith("a ") and cap.endswith(" background") for cap in caps)
    for cap, label in zip(caps, batch.labels.tolist(), strict=True):
        assert f" {CLASSES[label]} " in cap
    # the size word is monotone in the scale
    rank = {"small": 0, "medium": 1, "large": 2}
    order = torch.argsort(f["scale"]).tolist()
    ranks = [rank[caps[i].split()[1]] for i in order]
    assert ranks == sorted(ranks) and set(ranks) == {0, 1, 2}
    # the position words match where the mask is
    cx, cy = _centroids(batch.masks)
    S = 32
    checked = 0
    for i, cap in enumerate(caps):
        if abs(cx[i] / S - 0.5) > 0.12 and abs(cy[i] / S - 0.5) > 0.12:
            row = "top" if cy[i] < S / 2 else "bottom"
            col = "left" if cx[i] < S / 2 else "right"
            assert f"in the {row} {col}" in cap, (cap, cx[i].item(), cy[i].item())
            checked += 1
        if abs(cx[i] / S - 0.5) < 0.04 and abs(cy[i] / S - 0.5) < 0.04:
            assert "in the centre" in cap, cap
    assert checked >= 20
    words = {"plain", "gradient", "striped", "checkered", "mottled"}
    for cap, kind in zip(caps, f["background"].tolist(), strict=True):
        assert cap.split()[-2] == data._BACKGROUND_WORDS[BACKGROUNDS[kind]]
        assert cap.split()[-2] in words


@pytest.mark.parametrize(
    "rgb, word",
    [((1.0, 0.0, 0.0), "red"), ((0.0, 0.2, 1.0), "blue"), ((0.1, 0.9, 0.1), "green"),
     ((1.0, 0.9, 0.0), "yellow"), ((0.95, 0.95, 0.95), "white"), ((1.0, 0.5, 0.0), "orange")],
)
def test_caption_colour_word_for_a_forced_colour(rgb, word):
    cfg = preset("easy", colour=False, fixed_colour=rgb)
    assert all(cap.split()[2] == word for cap in render(cfg, 10).captions())


def test_caption_example():
    cfg = preset("easy", colour=False, fixed_colour=(1.0, 0.0, 0.0), backgrounds=("stripes",),
                 scale_range=(0.4, 0.4), position_jitter=0.0, classes=("star", "ring"))
    assert render(cfg, 1).captions() == ["a small red star in the centre on a striped background"]


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(image_size=30), "image_size"),
        (dict(noise_std=-0.1), "noise_std"),
        (dict(scale_range=(0.0, 0.5)), "scale_range"),
        (dict(scale_range=(0.5, 1.2)), "scale_range"),
        (dict(scale_range=(0.7, 0.5)), "scale_range"),
        (dict(max_rotation=-0.1), "max_rotation"),
        (dict(max_rotation=4.0), "max_rotation"),
        (dict(position_jitter=0.6), "position_jitter"),
        (dict(backgrounds=("plaid",)), "backgrounds"),
        (dict(backgrounds=()), "backgrounds"),
        (dict(classes=("circle", "blob")), "classes"),
        (dict(classes=("circle",)), "classes"),
        (dict(max_distractors=9), "max_distractors"),
        (dict(max_distractors=-1), "max_distractors"),
        (dict(fixed_colour=(1.0, 2.0, 0.0)), "fixed_colour"),
        (dict(colour="yes"), "colour"),
        (dict(texture_contrast=(0.2, 1.5)), "texture_contrast"),
    ],
)
def test_invalid_config_raises_a_value_error_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name) as info:
        ShapeWorldConfig(**kwargs)
    value = next(iter(kwargs.values()))
    candidates = [value, *value] if isinstance(value, tuple) else [value]
    msg = str(info.value)
    assert any(f"{name}={v!r}" in msg for v in candidates), msg  # names the offending value
    assert any(w in msg for w in ("allowed", "choose one of", "must be", "need")), msg
    with pytest.raises(ValueError, match=name):
        preset("hard", **kwargs)


def test_invalid_preset_and_render_arguments():
    with pytest.raises(ValueError, match="name='medium'.*'easy', 'standard', 'hard'"):
        preset("medium")
    with pytest.raises(ValueError, match="override='noise'"):
        preset("easy", noise=0.1)
    with pytest.raises(ValueError, match="n=-1"):
        render("easy", -1)
    with pytest.raises(ValueError, match="start=-5"):
        render("easy", 3, start=-5)
    with pytest.raises(ValueError, match="chunk_size=0"):
        render("easy", 3, chunk_size=0)
    with pytest.raises(ValueError, match="seed=-1"):
        render("easy", 3, seed=-1)
    with pytest.raises(TypeError):
        render(42, 3)


# ---------------------------------------------------------------- splits
SMALL = dict(n_unlabeled=120, labels_per_class=5, n_val=30, n_test=40)


def test_shapeworld_splits_shapes_and_balance():
    sp = shapeworld_splits("easy", **SMALL)
    assert sp.unlabeled.shape == (120, 3, 32, 32) and sp.unlabeled.dtype == torch.uint8
    assert sp.train_x.shape == (50, 3, 32, 32) and sp.train_y.shape == (50,)
    assert sp.val_x.shape == (30, 3, 32, 32) and sp.test_x.shape == (40, 3, 32, 32)
    assert sp.train_y.dtype == torch.int64
    assert sp.num_classes == 10 and sp.classes == CLASSES and sp.image_size == 32
    for y, per in ((sp.train_y, 5), (sp.val_y, 3), (sp.test_y, 4)):
        assert torch.bincount(y, minlength=10).tolist() == [per] * 10
    assert sp.name == "shapeworld-easy"


def test_splits_are_disjoint_index_ranges_of_one_stream():
    sp = shapeworld_splits("hard", seed=4, **SMALL)
    cfg = preset("hard")
    assert torch.equal(sp.unlabeled, render(cfg, 120, seed=4).images)
    assert torch.equal(sp.train_x, render(cfg, 50, seed=4, start=120).images)
    assert torch.equal(sp.val_x, render(cfg, 30, seed=4, start=170).images)
    assert torch.equal(sp.test_x, render(cfg, 40, seed=4, start=200).images)
    digests = {}
    for name in ("unlabeled", "train_x", "val_x", "test_x"):
        for img in getattr(sp, name):
            digests.setdefault(hashlib.sha1(img.numpy().tobytes()).hexdigest(), set()).add(name)
    assert all(len(v) == 1 for v in digests.values())
    assert len(digests) == 240  # not even a duplicate inside a split
    again = shapeworld_splits("hard", seed=4, **SMALL)
    assert torch.equal(again.test_x, sp.test_x) and torch.equal(again.train_y, sp.train_y)


def test_splits_take_overrides_and_validate_sizes():
    sp = shapeworld_splits("easy", image_size=24, max_rotation=0.0, **SMALL)
    assert sp.image_size == 24 and sp.info["config"].max_rotation == 0.0
    with pytest.raises(ValueError, match="n_val=15"):
        shapeworld_splits("easy", n_unlabeled=0, labels_per_class=1, n_val=15, n_test=10)
    with pytest.raises(ValueError, match="labels_per_class=0"):
        shapeworld_splits("easy", n_unlabeled=0, labels_per_class=0, n_val=10, n_test=10)
    with pytest.raises(ValueError, match="n_unlabeled=-1"):
        shapeworld_splits("easy", n_unlabeled=-1)
    with pytest.raises(ValueError, match="name='extreme'"):
        shapeworld_splits("extreme", **SMALL)


def test_labeled_subset_takes_the_first_examples_of_each_class():
    sp = shapeworld_splits("easy", **SMALL)
    x, y = sp.labeled_subset(2)
    assert torch.bincount(y, minlength=10).tolist() == [2] * 10
    # labels cycle, so the first two per class are the first 20 images, in order
    assert torch.equal(x, sp.train_x[:20]) and torch.equal(y, sp.train_y[:20])
    # the same as asking for 2 labels per class from the start
    small = shapeworld_splits("easy", n_unlabeled=120, labels_per_class=2, n_val=0, n_test=0)
    assert torch.equal(small.train_x, x)
    for arg in (None, "all"):
        xa, ya = sp.labeled_subset(arg)
        assert torch.equal(xa, sp.train_x) and torch.equal(ya, sp.train_y)
    with pytest.raises(ValueError, match=r"per_class=6 .*\[1, 5\]"):
        sp.labeled_subset(6)
    with pytest.raises(ValueError, match="per_class=0"):
        sp.labeled_subset(0)


def test_labeled_subset_on_an_unordered_labeled_set():
    y = torch.tensor([3, 1, 3, 0, 1, 0, 2, 2, 3, 0, 1, 2])
    x = torch.arange(12).view(12, 1, 1, 1).expand(12, 3, 2, 2).to(torch.uint8)
    sp = data.Splits(x, x, y, x[:0], y[:0], x[:0], y[:0], ("a", "b", "c", "d"), "toy")
    xs, ys = sp.labeled_subset(1)
    assert ys.tolist() == [3, 1, 0, 2]  # first of each class, original order
    assert xs[:, 0, 0, 0].tolist() == [0, 1, 3, 6]


def test_splits_summary_and_to():
    sp = shapeworld_splits("easy", **SMALL)
    text = sp.summary()
    assert text == shapeworld_splits("easy", **SMALL).summary()
    assert "shapeworld-easy: 32x32 RGB images, 10 classes" in text
    assert "unlabeled:     120" in text and "(5 per class)" in text and "test:           40" in text
    moved = sp.to("cpu")
    assert torch.equal(moved.test_x, sp.test_x) and moved.classes == sp.classes
    assert "Splits(name='shapeworld-easy'" in repr(sp)


# ---------------------------------------------------------------- real datasets
@pytest.fixture
def no_md5(monkeypatch):
    skip_md5(monkeypatch)


def test_load_cifar10_from_torchvision_files(tmp_path, no_md5):
    labels = write_cifar(tmp_path)  # 100 train images (10 per class), 20 test
    sp = load_real("cifar10", tmp_path, labels_per_class=3, n_val=20, seed=1)
    assert sp.name == "cifar10" and sp.classes == tuple(CIFAR_NAMES)
    assert sp.unlabeled.shape == (100, 3, 32, 32) and sp.unlabeled.dtype == torch.uint8
    assert sp.train_x.shape == (30, 3, 32, 32) and sp.val_x.shape == (20, 3, 32, 32)
    assert sp.test_x.shape == (20, 3, 32, 32)
    assert torch.bincount(sp.train_y, minlength=10).tolist() == [3] * 10
    assert torch.bincount(sp.val_y, minlength=10).tolist() == [2] * 10
    # channels and orientation: red = 10·label, blue grows along the width
    for x, y in ((sp.train_x, sp.train_y), (sp.val_x, sp.val_y), (sp.test_x, sp.test_y)):
        assert torch.equal(x[:, 0, 0, 0].long(), 10 * y)
        assert torch.equal(x[0, 2, 5], torch.arange(32, dtype=torch.uint8) * 4)
    assert torch.equal(sp.unlabeled[:, 1, 0, 0], torch.arange(100, dtype=torch.uint8))
    # labeled and val images are different training images; unlabeled holds all of them
    train_ids = set(sp.train_x[:, 1, 0, 0].tolist())
    val_ids = set(sp.val_x[:, 1, 0, 0].tolist())
    assert len(train_ids) == 30 and len(val_ids) == 20 and not train_ids & val_ids
    ids = sp.train_x[:, 1, 0, 0].long().numpy()
    assert labels[ids].tolist() == sp.train_y.tolist()  # each image keeps its file's label
    # a different seed picks different labeled images; the same seed the same ones
    assert not torch.equal(load_real("cifar10", tmp_path, labels_per_class=3, n_val=20,
                                     seed=2).train_x, sp.train_x)
    assert torch.equal(load_real("cifar10", tmp_path, labels_per_class=3, n_val=20,
                                 seed=1).train_x, sp.train_x)
    # nested: fewer labels per class are the first of the bigger labeled set
    x2, _ = sp.labeled_subset(2)
    small = load_real("cifar10", tmp_path, labels_per_class=2, n_val=20, seed=1)
    assert torch.equal(small.train_x, x2)
    with pytest.raises(ValueError, match="labels_per_class=9"):
        load_real("cifar10", tmp_path, labels_per_class=9, n_val=20)
    resized = load_real("cifar10", tmp_path, labels_per_class=3, n_val=20, image_size=16)
    assert resized.train_x.shape == (30, 3, 16, 16) and resized.unlabeled.shape[-1] == 16


def test_corrupt_cifar_files_fail_the_md5_check_with_a_clear_message(tmp_path):
    write_cifar(tmp_path)  # genuine torchvision md5 check: fabricated files fail it
    with pytest.raises(DatasetNotFoundError, match="md5") as info:
        load_real("cifar10", tmp_path)
    assert "download=True" in str(info.value)


def test_load_stl10_from_torchvision_files(tmp_path, no_md5):
    train, unlabeled = write_stl(tmp_path)
    sp = load_real("stl10", tmp_path, labels_per_class=2, n_val=10)
    assert sp.unlabeled.shape == (12, 3, 96, 96)
    assert torch.equal(sp.unlabeled, torch.from_numpy(unlabeled))  # orientation preserved
    assert sp.train_x.shape == (20, 3, 96, 96) and sp.val_x.shape == (10, 3, 96, 96)
    assert sp.test_x.shape == (20, 3, 96, 96) and sp.test_y.tolist() == list(range(10)) * 2
    assert torch.bincount(sp.train_y, minlength=10).tolist() == [2] * 10
    assert sp.classes[0] == "airplane" and sp.num_classes == 10
    # each labeled image is one of the labeled training images, with its label
    lookup = {img.tobytes(): k % 10 for k, img in enumerate(train)}
    for img, y in zip(sp.train_x, sp.train_y.tolist(), strict=True):
        assert lookup[img.numpy().tobytes()] == y
    small = load_real("stl10", tmp_path, labels_per_class=2, n_val=10, image_size=32)
    assert small.unlabeled.shape == (12, 3, 32, 32) and small.train_x.shape == (20, 3, 32, 32)
    assert small.unlabeled.dtype == torch.uint8
    # antialiased downsampling keeps the mean colour
    diff = small.unlabeled.double().mean((2, 3)) - sp.unlabeled.double().mean((2, 3))
    assert diff.abs().max() < 1.0


def _write_idx(path, array: np.ndarray) -> None:
    magic = 0x0800 + array.ndim  # unsigned byte type, number of dimensions
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def test_load_mnist_from_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", train)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(50) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", train[:20])
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(20) % 10)
    sp = load_real("mnist", tmp_path, labels_per_class=2, n_val=20)
    assert sp.unlabeled.shape == (50, 3, 32, 32) and sp.unlabeled.dtype == torch.uint8
    assert torch.equal(sp.unlabeled[:, 0, 2:30, 2:30], torch.from_numpy(train))  # padded by 2
    assert (sp.unlabeled[:, :, :2] == 0).all() and (sp.unlabeled[:, :, :, 30:] == 0).all()
    assert torch.equal(sp.unlabeled[:, 0], sp.unlabeled[:, 2])  # grey in 3 channels
    assert sp.train_x.shape == (20, 3, 32, 32) and sp.val_x.shape == (20, 3, 32, 32)
    assert sp.test_y.tolist() == list(range(10)) * 2
    assert sp.classes == ("zero", "one", "two", "three", "four", "five", "six", "seven",
                          "eight", "nine")


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test's network calls loudly and record them."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return calls


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"),
                                          ("stl10", "stl10_binary"),
                                          ("mnist", os.path.join("MNIST", "raw"))])
def test_missing_dataset_says_where_and_what_to_do_without_network(tmp_path, no_network, name,
                                                                   folder):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as info:
        load_real(name, root)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert name in msg and str(root / folder) in msg
    assert "download=True" in msg and "offline" in msg and f"'{folder}{os.sep}'" in msg
    assert no_network == []  # download=False never touches the network
    assert not root.exists()  # nor creates folders


def test_failed_download_is_reported_as_missing_data(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed.*offline"):
        load_real("cifar10", tmp_path, download=True)


def test_invalid_real_dataset_arguments(tmp_path):
    with pytest.raises(ValueError, match="name='imagenet'.*'cifar10', 'stl10', 'mnist'"):
        load_real("imagenet", tmp_path)
    with pytest.raises(ValueError, match="n_val=15"):
        load_real("cifar10", tmp_path, n_val=15)
    with pytest.raises(ValueError, match="labels_per_class=0"):
        load_real("cifar10", tmp_path, labels_per_class=0)
    with pytest.raises(ValueError, match="image_size=4"):
        load_real("stl10", tmp_path, image_size=4)
