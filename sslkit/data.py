"""Data: ShapeWorld, the procedurally generated default dataset, and real datasets as ``Splits``.

Why a procedural dataset
    The course must run on a CPU laptop, offline, in about a minute per training cell. CIFAR-10
    needs a 163 MB download and hours of training before self-supervised methods separate from
    their baselines. ShapeWorld is drawn on the fly (about 28,000 images/s for ``hard`` at 32×32
    on two CPU cores; ``benchmarks/shapeworld.py`` measures it), needs no file, and every
    *factor of variation* (class, colour, size, position, rotation, background texture, noise,
    clutter) is known and can be switched off or limited. That makes it a laboratory: a notebook
    can ask "which augmentation removes which nuisance factor?" or "does the representation
    encode colour or shape?" and read the answer off ``factors``.
    ``preset("hard")`` follows the setting of the course's first CPU calibration (random
    colours, textures, noise, clutter, free rotation), whose targets are a random-init CNN with
    a linear probe near chance (about 10-17 %) and supervised training on 1,000 labels at about
    60 % or more: the object stays the dominant thing in the image (drawn last, with a higher
    HSV value than the background's base colour and a hue at least 90° away from it), but
    colours, textures and clutter must be learned away. Re-measure those two numbers after
    changing a preset.

How an image is drawn
    Every shape is a *signed distance field* (SDF): a function of the pixel position that is
    negative inside the shape, positive outside and equal to the distance to the edge, in the
    spirit of Inigo Quilez's 2D distance functions. A pixel's coverage is
    ``clamp(0.5 - distance_in_pixels, 0, 1)``, which anti-aliases every edge over one pixel, and
    the object mask is ``distance < 0``. All images of a chunk are drawn at once with tensor
    operations; each class's SDF is evaluated only on the samples of that class. Per pixel, only
    ``+ - * /``, ``sqrt``, ``abs``, ``sign``, ``min``/``max``/``clamp``, ``floor`` and integer
    hashing are used: they are exact or correctly rounded in every code path, so an image never
    depends on how the work was split into SIMD lanes or threads. (``sin``/``cos`` may differ by
    one ulp between vector and scalar loops; they are only used per sample, in float64, before
    rounding to float32.)

Why a counter-based hash instead of a random generator
    A sequential generator (``torch.Generator``) hands out numbers in order, so image 5 would
    depend on how many numbers images 0-4 consumed, on the chunk size and on whether we started
    at 0. Here every random number is ``hash(seed, stream, index)``: the 64-bit *splitmix64*
    finaliser (Steele, Lea and Flood, *Fast splittable pseudorandom number generators*, 2014)
    evaluated on int64 tensors (multiplication wraps modulo 2^64; right shifts are masked to be
    logical). Sample ``i`` is therefore a pure function of ``(seed, start + i)``:
    ``render(cfg, 10, start=5)`` equals ``render(cfg, 100)[5:15]`` bit for bit, whatever
    ``chunk_size``, and disjoint index ranges give the disjoint, reproducible splits of
    :func:`shapeworld_splits`.

Real datasets
    :func:`load_real` returns CIFAR-10, STL-10 or MNIST as the same :class:`Splits`, read with
    ``torchvision.datasets`` (which verifies each file's md5; CIFAR's files are pickles, and the
    checksum is what makes unpickling them safe) and converted from the datasets' ``.data``
    arrays in one step. Without the files it raises :class:`DatasetNotFoundError` saying where
    it looked and what to do; it touches the network only with ``download=True``.
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from ._validate import check_choice, check_positive_int, check_range, check_unit_interval_pair

__all__ = [
    "BACKGROUNDS",
    "CLASSES",
    "DatasetNotFoundError",
    "IMAGE_SIZES",
    "PRESETS",
    "REAL_DATASETS",
    "ShapeWorldBatch",
    "ShapeWorldConfig",
    "Splits",
    "load_real",
    "preset",
    "render",
    "shapeworld_splits",
]

# The ten classes. Each has a feature that survives free rotation and a 32×32 grid, and no class
# is a rotation of another: corners (triangle 3, square 4), spikes (star), arms (cross), a hole
# (ring), one bite (crescent), a notch and a tip (heart), elongation (bar) and a composite
# (arrow = bar + triangle). Left out on purpose: "diamond" (a rotated square), "pentagon" and
# "hexagon" (blur into a circle at 32×32), "ellipse" (a fat bar or a thin circle, depending on
# its aspect ratio).
CLASSES: tuple[str, ...] = (
    "circle", "triangle", "square", "star", "heart", "cross", "ring", "crescent", "bar", "arrow",
)
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "stripes", "checker", "noise")
IMAGE_SIZES: tuple[int, ...] = (24, 32, 64)
REAL_DATASETS: tuple[str, ...] = ("cifar10", "stl10", "mnist")

# Words used by ``ShapeWorldBatch.captions``.
_BACKGROUND_WORDS = {
    "flat": "plain", "gradient": "gradient", "stripes": "striped", "checker": "checkered",
    "noise": "mottled",
}
# (upper hue bound in degrees, name); red wraps around 360.
_HUE_NAMES = (
    (15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (200, "cyan"), (260, "blue"),
    (290, "purple"), (345, "pink"), (360, "red"),
)
_SIZE_WORDS = ((0.5, "small"), (0.65, "medium"), (math.inf, "large"))  # upper bound on scale


# --------------------------------------------------------------------------------------------
# Counter-based hashing
# --------------------------------------------------------------------------------------------
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment (2^64 / golden ratio)
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed64(v: int) -> int:
    """The int64 (two's complement) with the same 64 bits as the Python int ``v``."""
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def _mix64_int(z: int) -> int:
    """splitmix64's finaliser on a Python int (the reference that ``_mix64`` must match)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


_MIX1_S, _MIX2_S, _GOLDEN_S = _signed64(_MIX1), _signed64(_MIX2), _signed64(_GOLDEN)


def _mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser, in place on an int64 tensor of any shape; returns ``z``.

    int64 multiplication wraps modulo 2^64 like the unsigned original; ``>>`` on int64 is an
    arithmetic shift, so the sign-extended bits are masked off to make it logical.
    """
    t = torch.empty_like(z)
    for shift, mult in ((30, _MIX1_S), (27, _MIX2_S), (31, None)):
        torch.bitwise_right_shift(z, shift, out=t)
        t.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(t)
        if mult is not None:
            z.mul_(mult)
    return z


def _stream_keys(seed: int, n_streams: int, device) -> torch.Tensor:
    """One 64-bit key per random stream: ``(n_streams,)`` int64, a function of ``seed`` only."""
    base = _mix64_int(_mix64_int(seed) + 0x5EED)
    keys = [_signed64(_mix64_int(base + (k + 1) * 0xD1B54A32D192ED03)) for k in range(n_streams)]
    return torch.tensor(keys, dtype=torch.int64, device=device)


def _sample_hashes(seed: int, index: torch.Tensor, n_streams: int) -> torch.Tensor:
    """Per-sample random bits: ``index`` (B,) int64 → (B, n_streams) int64.

    Entry ``[b, k]`` depends only on ``(seed, k, index[b])``.
    """
    keys = _stream_keys(seed, n_streams, index.device)
    z = index[:, None] * _GOLDEN_S + keys[None, :]
    return _mix64(_mix64(z))


def _unit64(z: torch.Tensor) -> torch.Tensor:
    """Uniform numbers in [0, 1) from the top 53 bits of int64 hashes (float64, same shape)."""
    return ((z >> 11) & ((1 << 53) - 1)).to(torch.float64) * 2.0**-53


def _counter_bits(key: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` random 64-bit words per sample: ``key`` (B,) int64 → (B, count) int64.

    The splitmix64 sequence started at each sample's key; word ``j`` depends only on
    ``(key[b], j)``, so it is the same whatever batch the sample is drawn in.
    """
    j = torch.arange(1, count + 1, dtype=torch.int64, device=key.device)
    return _mix64(key[:, None] + j[None, :] * _GOLDEN_S)


# Named per-sample streams; distractor slot j uses _DISTRACTOR_BASE + 8 j + (0..7).
_S = {name: k for k, name in enumerate((
    "scale", "x", "y", "rotation", "hue", "saturation", "value", "bg_kind", "bg_hue", "bg_sat",
    "bg_value", "bg_hue2", "bg_value2", "bg_angle", "bg_period", "bg_phase", "bg_phase2",
    "n_distractors", "noise", "noise_key", "texture_key",
))}
_DISTRACTOR_BASE = 24
_MAX_DISTRACTORS = 8
_N_STREAMS = _DISTRACTOR_BASE + 8 * _MAX_DISTRACTORS


# --------------------------------------------------------------------------------------------
# Signed distance fields, in object units: the shape fits the unit disc, y points up.
# --------------------------------------------------------------------------------------------
def _length(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + y * y)


def _sd_box(x, y, bx: float, by: float):
    """Box with half-sizes ``(bx, by)`` centred at the origin (exact)."""
    dx = x.abs() - bx
    dy = y.abs() - by
    return _length(dx.clamp(min=0), dy.clamp(min=0)) + torch.maximum(dx, dy).clamp(max=0)


def _sd_circle(x, y):
    return _length(x, y) - 0.78


_SQRT3 = math.sqrt(3.0)


def _sd_triangle(x, y, r: float = 0.8227):
    """Equilateral triangle, apex up, half-side ``r`` (circumradius 0.95), centroid at 0."""
    px = x.abs() - r
    py = y + r / _SQRT3
    fold = px + _SQRT3 * py > 0
    qx = torch.where(fold, (px - _SQRT3 * py) * 0.5, px)
    qy = torch.where(fold, (-_SQRT3 * px - py) * 0.5, py)
    qx = qx - qx.clamp(-2 * r, 0)
    return -_length(qx, qy) * torch.sign(qy)


def _sd_square(x, y):
    return _sd_box(x, y, 0.65, 0.65)


_K1X, _K1Y = 0.809016994375, -0.587785252292  # (cos 36°, -sin 36°)


def _sd_star(x, y, r: float = 0.95, rf: float = 0.52):
    """Five-pointed star, one point up, outer radius ``r``, inner/outer ratio ~``rf`` (exact)."""
    k2x, k2y = -_K1X, _K1Y
    x = x.abs()
    d = (_K1X * x + _K1Y * y).clamp(min=0) * 2
    x, y = x - d * _K1X, y - d * _K1Y
    d = (k2x * x + k2y * y).clamp(min=0) * 2
    x, y = x - d * k2x, y - d * k2y
    x = x.abs()
    y = y - r
    bax, bay = rf * -_K1Y, rf * _K1X - 1.0
    h = ((x * bax + y * bay) / (bax * bax + bay * bay)).clamp(0, r)
    return _length(x - bax * h, y - bay * h) * torch.sign(y * bax - x * bay)


def _sd_heart(x, y, k: float = 0.7291, cy: float = 0.6564):
    """Heart, tip down: the unit heart (tip at 0, top at 1.1) moved to its centroid, scaled."""
    return _heart_unit((x * k).abs(), y * k + cy) / k


def _heart_unit(x, y):
    # x >= 0 (the heart is symmetric). Upper lobes are circles; the lower part is the distance
    # to two segments.
    lobe = _length(x - 0.25, y - 0.75) - math.sqrt(2.0) / 4
    m = (x + y).clamp(min=0) * 0.5
    d1 = x * x + (y - 1) * (y - 1)
    d2 = (x - m) * (x - m) + (y - m) * (y - m)
    lower = torch.sqrt(torch.minimum(d1, d2)) * torch.sign(x - y)
    return torch.where(x + y > 1, lobe, lower)


def _sd_cross(x, y):
    return torch.minimum(_sd_box(x, y, 0.9, 0.28), _sd_box(x, y, 0.28, 0.9))


def _sd_ring(x, y):
    return (_length(x, y) - 0.7).abs() - 0.2


def _sd_crescent(x, y, k: float = 0.8453, cx: float = -0.2736):
    """Disc of radius 0.9 minus a disc of radius 0.62 shifted by 0.45, opening to the right."""
    x = x / k + cx
    y = y / k
    return torch.maximum(_length(x, y) - 0.9, 0.62 - _length(x - 0.45, y)) * k


def _sd_bar(x, y):
    return _sd_box(x, y, 0.88, 0.34)


def _sd_isosceles(x, y, wx: float, hy: float):
    """Isosceles triangle with apex at 0 and base (half-width ``wx``) at ``y = hy`` (exact)."""
    x = x.abs()
    t = ((x * wx + y * hy) / (wx * wx + hy * hy)).clamp(0, 1)
    ax, ay = x - wx * t, y - hy * t
    tb = (x / wx).clamp(0, 1)
    bx, by = x - wx * tb, y - hy
    dist2 = torch.minimum(ax * ax + ay * ay, bx * bx + by * by)
    inside = torch.minimum(y * wx - x * hy, hy - y)  # > 0 inside
    return -torch.sqrt(dist2) * torch.sign(inside)


def _sd_arrow(x, y, k: float = 0.9634, cy: float = 0.0271):
    """Arrow pointing up: triangular head (base at y = 0.23) on a shaft.

    The shaft reaches into the head (to y = 0.43): a union by ``min`` is only a distance deep
    inside where the parts overlap, and touching parts would leave a half-covered seam.
    """
    x = x / k
    y = y / k + cy
    head = _sd_isosceles(x, 0.95 - y, 0.68, 0.72)
    shaft = _sd_box(x, y + 0.25, 0.25, 0.68)
    return torch.minimum(head, shaft) * k


# Areas (unit disc = π): circle 1.91, ring 1.76, cross 1.70, square 1.68, heart 1.68, star 1.38,
# bar 1.19, triangle 1.17, crescent 1.06, arrow 0.99. Thin shapes cannot grow inside the unit
# disc, so the round ones are kept smaller than they could be: the object's area alone (a cue a
# random network picks up) then says less about its class.
_SDF = {
    "circle": _sd_circle, "triangle": _sd_triangle, "square": _sd_square, "star": _sd_star,
    "heart": _sd_heart, "cross": _sd_cross, "ring": _sd_ring, "crescent": _sd_crescent,
    "bar": _sd_bar, "arrow": _sd_arrow,
}


# --------------------------------------------------------------------------------------------
# Configuration and presets
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapeWorldConfig:
    """What varies in ShapeWorld, and how much. Every factor can be switched off or limited.

    Fields (all validated; a bad value raises ``ValueError`` naming it):
        image_size: side ``S`` of the square images, one of 24, 32, 64.
        classes: the shape classes (a subset of ``CLASSES``, ≥ 2); label ``k`` is ``classes[k]``.
        max_rotation: rotation drawn uniformly in ``[-max_rotation, max_rotation]`` radians,
            in ``[0, π]``; 0 keeps every shape upright.
        scale_range: ``(low, high)`` in (0, 1]: the object's bounding diameter as a fraction of
            the image side, drawn uniformly.
        position_jitter: the centre moves by up to this fraction of the image side from the
            middle, in ``[0, 0.5]``; always limited so that the object stays inside the image.
        colour: random object hue, saturation and value if True, else ``fixed_colour``.
        fixed_colour: RGB in [0, 1] used when ``colour`` is False.
        backgrounds: the background kinds drawn uniformly, a subset of ``BACKGROUNDS``
            (flat, gradient, stripes, checker, noise).
        background_colour: random background colours (the base colour darker than the object,
            with a hue at least 90° away from it) if True, else fixed greys.
        texture_contrast: ``(low, high)`` value difference in [0, 1] between the two colours of
            a gradient/stripes/checker/noise background.
        noise_std: each image gets per-pixel noise of standard deviation drawn uniformly in
            ``[0, noise_std]`` (on the 0-1 scale), ``noise_std`` in ``[0, 0.5]``.
        max_distractors: 0 to 8 small blobs and lines of clutter, drawn under the object (never
            part of its mask); each image has ``0..max_distractors`` of them, uniformly.
    """

    image_size: int = 32
    classes: tuple[str, ...] = CLASSES
    max_rotation: float = math.pi
    scale_range: tuple[float, float] = (0.45, 0.85)
    position_jitter: float = 0.15
    colour: bool = True
    fixed_colour: tuple[float, float, float] = (0.95, 0.95, 0.95)
    backgrounds: tuple[str, ...] = ("flat", "gradient", "stripes", "checker")
    background_colour: bool = True
    texture_contrast: tuple[float, float] = (0.1, 0.25)
    noise_std: float = 0.04
    max_distractors: int = 1

    def __post_init__(self):
        check_choice("image_size", self.image_size, IMAGE_SIZES)
        object.__setattr__(self, "image_size", int(self.image_size))
        classes = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
        for name in classes:
            check_choice("classes", name, CLASSES)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(
                f"classes={classes!r} is invalid: need at least 2 distinct names from {CLASSES}"
            )
        object.__setattr__(self, "classes", classes)
        object.__setattr__(
            self, "max_rotation", float(check_range("max_rotation", self.max_rotation, 0, math.pi))
        )
        object.__setattr__(
            self, "scale_range", check_unit_interval_pair("scale_range", self.scale_range)
        )
        object.__setattr__(
            self, "position_jitter",
            float(check_range("position_jitter", self.position_jitter, 0, 0.5)),
        )
        check_choice("colour", self.colour, (True, False))
        check_choice("background_colour", self.background_colour, (True, False))
        try:
            rgb = tuple(float(v) for v in self.fixed_colour)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3:
            raise ValueError(f"fixed_colour={self.fixed_colour!r} is invalid: expected (r, g, b)")
        for v in rgb:
            check_range("fixed_colour", v, 0, 1)
        object.__setattr__(self, "fixed_colour", rgb)
        kinds = self.backgrounds
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        for kind in kinds:
            check_choice("backgrounds", kind, BACKGROUNDS)
        if not kinds or len(set(kinds)) != len(kinds):
            raise ValueError(
                f"backgrounds={kinds!r} is invalid: need at least one distinct name from "
                f"{BACKGROUNDS}"
            )
        object.__setattr__(self, "backgrounds", kinds)
        object.__setattr__(
            self, "texture_contrast",
            check_unit_interval_pair("texture_contrast", self.texture_contrast, low_open=False),
        )
        object.__setattr__(
            self, "noise_std", float(check_range("noise_std", self.noise_std, 0, 0.5))
        )
        check_positive_int("max_distractors", self.max_distractors, allow_zero=True)
        check_range("max_distractors", self.max_distractors, 0, _MAX_DISTRACTORS)

    @property
    def num_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.classes)


PRESETS: dict[str, dict] = {
    # One object on a plain or smoothly shaded background: shape, colour, size, rotation vary.
    "easy": dict(
        backgrounds=("flat", "gradient"), noise_std=0.02, max_distractors=0,
        scale_range=(0.55, 0.85), position_jitter=0.1, texture_contrast=(0.1, 0.25),
    ),
    # Adds stripes and checkerboards and one piece of clutter.
    "standard": dict(),
    # Everything on: all textures, more noise, up to three distractors, more size/position range.
    "hard": dict(
        backgrounds=BACKGROUNDS, noise_std=0.08, max_distractors=3, scale_range=(0.4, 0.85),
        position_jitter=0.2, texture_contrast=(0.15, 0.35),
    ),
}


def preset(name: str, **overrides) -> ShapeWorldConfig:
    """Return the ``ShapeWorldConfig`` of a named preset, with ``overrides`` applied.

    ``easy``: flat/gradient backgrounds, little noise, no clutter, free rotation.
    ``standard``: adds stripes and checkerboards, some noise and one distractor.
    ``hard``: all backgrounds including textures, noise, up to 3 distractors, free rotation,
    wide scale and position ranges (the course's default).

    >>> preset("hard", image_size=64, max_rotation=0.0).image_size
    64
    """
    check_choice("name", name, tuple(PRESETS), hint="these are the ShapeWorld presets")
    known = {f.name for f in fields(ShapeWorldConfig)}
    for key in overrides:
        check_choice("override", key, sorted(known), hint="overrides are ShapeWorldConfig fields")
    return ShapeWorldConfig(**{**PRESETS[name], **overrides})


_preset = preset  # `shapeworld_splits` has an argument named `preset`


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV in [0, 1] → RGB in [0, 1]: (B,) × 3 → (B, 3). Arithmetic only."""
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + h * 6.0, 6.0)
        w = torch.minimum(k, 4.0 - k).clamp(0, 1)
        out.append(v - v * s * w)
    return torch.stack(out, dim=1)


def _rotated(px, py, cos, sin):
    """Project pixel coordinates on a per-sample direction: (S,), (S,), (B,), (B,) → (B, S, S)."""
    return px[None, None, :] * cos[:, None, None] + py[None, :, None] * sin[:, None, None]


def _stripe(coord: torch.Tensor, period: torch.Tensor) -> torch.Tensor:
    """Anti-aliased square wave in [0, 1] of ``coord`` (in periods): (B,S,S), period px (B,1,1)."""
    tri = (2.0 * (coord - torch.floor(coord)) - 1.0).abs()  # triangle wave in [0, 1]
    return ((tri - 0.5) * period * 0.5 + 0.5).clamp(0, 1)


def _background(cfg: ShapeWorldConfig, kind: torch.Tensor, u: torch.Tensor,
                texture_key: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Per-pixel mixing weight between the two background colours: → (B, S, S) in [0, 1].

    ``kind`` (B,) indexes ``BACKGROUNDS``; ``u`` (B, streams) float64 uniforms.
    """
    S = cfg.image_size
    b = kind.shape[0]
    t = torch.zeros(b, S, S, device=px.device)
    angle = (u[:, _S["bg_angle"]] * (2 * math.pi))
    cos, sin = torch.cos(angle).float(), torch.sin(angle).float()
    period = ((3.0 + 4.0 * u[:, _S["bg_period"]]) * (S / 32.0)).float()  # 3-7 px at 32×32
    phase = u[:, _S["bg_phase"]].float()
    phase2 = u[:, _S["bg_phase2"]].float()
    for k, name in enumerate(BACKGROUNDS):
        idx = (kind == k).nonzero().squeeze(1)
        if name == "flat" or idx.numel() == 0:
            continue
        c, s = cos[idx], sin[idx]
        if name == "gradient":
            w = (_rotated(px - S / 2, px - S / 2, c, s) / S + 0.5).clamp(0, 1)
        elif name == "stripes":
            per = period[idx, None, None]
            w = _stripe(_rotated(px, px, c, s) / per + phase[idx, None, None], per)
        elif name == "checker":
            per = period[idx, None, None] * 1.5
            a = _stripe(_rotated(px, px, c, s) / per + phase[idx, None, None], per)
            bb = _stripe(_rotated(px, px, -s, c) / per + phase2[idx, None, None], per)
            w = 0.5 + 0.5 * (2.0 * a - 1.0) * (2.0 * bb - 1.0)
        else:  # "noise": smooth value noise on a 4×4-cell grid, sharpened a little
            grid = 4
            vals = _unit64(_counter_bits(texture_key[idx], (grid + 1) ** 2)).float()
            vals = vals.view(-1, grid + 1, grid + 1)
            f = px / S * grid
            i0 = torch.floor(f).long().clamp(max=grid - 1)
            fr = f - i0
            fr = fr * fr * (3.0 - 2.0 * fr)
            top, bot = vals[:, i0], vals[:, i0 + 1]  # (n, S, grid + 1), rows
            top = top[:, :, i0] + (top[:, :, i0 + 1] - top[:, :, i0]) * fr[None, None, :]
            bot = bot[:, :, i0] + (bot[:, :, i0 + 1] - bot[:, :, i0]) * fr[None, None, :]
            w = top + (bot - top) * fr[None, :, None]
            w = ((w - 0.5) * 2.5 + 0.5).clamp(0, 1)
        t.index_copy_(0, idx, w)
    return t


def _triangular_noise(key: torch.Tensor, S: int, std: torch.Tensor) -> torch.Tensor:
    """Zero-mean per-pixel noise of standard deviation ``std`` (B,): ``key`` (B,) int64 →
    (B, 3, S, S) float32.

    Each value is the sum of two 8-bit uniforms (a triangular distribution, close enough to a
    Gaussian for image noise, with 511 levels: finer than the final 1/255 quantisation), read
    straight from the bytes of ``_counter_bits``: one 64-bit hash gives 4 values.
    """
    b = key.shape[0]
    words = _counter_bits(key, 3 * S * S // 4)  # 8 bytes each: 6 S² bytes
    pairs = words.view(torch.uint8).view(b, 3, S, S, 2)
    total = pairs[..., 0].to(torch.int16) + pairs[..., 1]  # 0..510, mean 255
    # each byte is uniform on {0..255}: variance (256² - 1) / 12; the sum has twice that
    scale = std.float() * (1.0 / math.sqrt((256.0**2 - 1.0) / 6.0))
    return total.to(torch.float32).sub_(255.0).mul_(scale[:, None, None, None])


def _render_chunk(cfg: ShapeWorldConfig, seed: int, first: int, b: int, device: torch.device):
    """Render samples ``first .. first + b - 1``: images float (b,3,S,S), masks, labels, factors."""
    S, K = cfg.image_size, cfg.num_classes
    index = torch.arange(first, first + b, dtype=torch.int64, device=device)
    labels = index % K
    z = _sample_hashes(seed, index, _N_STREAMS)  # (b, streams) int64
    u = _unit64(z)  # (b, streams) float64
    px = torch.arange(S, dtype=torch.float32, device=device) + 0.5  # pixel centres

    # -- object geometry (per sample, float64) --
    lo, hi = cfg.scale_range
    scale = lo + (hi - lo) * u[:, _S["scale"]]
    offset = ((1.0 - scale) * 0.5).clamp(max=cfg.position_jitter)  # stays inside the image
    x = 0.5 + (2.0 * u[:, _S["x"]] - 1.0) * offset
    y = 0.5 + (2.0 * u[:, _S["y"]] - 1.0) * offset
    rotation = (2.0 * u[:, _S["rotation"]] - 1.0) * cfg.max_rotation + 0.0
    radius = scale * (S / 2.0)  # pixels

    # Signed distance to the object in pixels, (b, S, S). Labels cycle, so the samples of class
    # k are the strided slice p0::K of the chunk: each class's SDF runs on its samples only.
    cx, cy = (x * S).float(), (y * S).float()
    cos_r = (torch.cos(rotation) / radius).float()
    sin_r = (torch.sin(rotation) / radius).float()
    radius_f = radius.float()
    dist = torch.empty(b, S, S, device=device)
    for k, name in enumerate(cfg.classes):
        sl = slice((k - first) % K, None, K)
        if sl.start >= b:
            continue
        dx = px[None, None, :] - cx[sl, None, None]  # (n, 1, S)
        dy = px[None, :, None] - cy[sl, None, None]  # (n, S, 1)
        c, s = cos_r[sl, None, None], sin_r[sl, None, None]
        # pixel → object units: rotate by -rotation, divide by the radius, flip y to point up
        qx = dx * c - dy * s
        qy = -(dx * s) - dy * c
        dist[sl] = _SDF[name](qx, qy).mul_(radius_f[sl, None, None])
    alpha = (0.5 - dist).clamp_(0, 1)

    # -- colours (per sample, float64) --
    if cfg.colour:
        hue = u[:, _S["hue"]]
        sat = 0.55 + 0.45 * u[:, _S["saturation"]]
        val = 0.65 + 0.35 * u[:, _S["value"]]
        obj_rgb = _hsv_to_rgb(hue, sat, val)
    else:
        h0, s0, v0 = colorsys.rgb_to_hsv(*cfg.fixed_colour)
        hue, sat, val = (torch.full((b,), c, dtype=torch.float64, device=device)
                         for c in (h0, s0, v0))
        obj_rgb = torch.tensor(cfg.fixed_colour, dtype=torch.float64, device=device).expand(b, 3)
    kinds = torch.tensor([BACKGROUNDS.index(k) for k in cfg.backgrounds], device=device)
    pick = (u[:, _S["bg_kind"]] * len(kinds)).long().clamp(max=len(kinds) - 1)
    bg_kind = kinds[pick]
    lo_c, hi_c = cfg.texture_contrast
    contrast = lo_c + (hi_c - lo_c) * u[:, _S["bg_value2"]]
    if cfg.background_colour:
        bg_hue = torch.remainder(hue + 0.25 + 0.5 * u[:, _S["bg_hue"]], 1.0)
        bg_sat = 0.2 + 0.6 * u[:, _S["bg_sat"]]
        bg_val = 0.08 + 0.4 * u[:, _S["bg_value"]]
        hue2 = torch.remainder(bg_hue + 0.16 * (u[:, _S["bg_hue2"]] - 0.5), 1.0)
        c1 = _hsv_to_rgb(bg_hue, bg_sat, bg_val)
        c2 = _hsv_to_rgb(hue2, bg_sat, bg_val + contrast)
    else:
        bg_hue = torch.zeros(b, dtype=torch.float64, device=device)
        bg_val = torch.full((b,), 0.15, dtype=torch.float64, device=device)
        c1 = bg_val[:, None].expand(b, 3)
        c2 = (bg_val + contrast)[:, None].expand(b, 3)
    t = _background(cfg, bg_kind, u, z[:, _S["texture_key"]], px)
    c1f, c2f = c1.float()[:, :, None, None], c2.float()[:, :, None, None]
    img = torch.mul(t[:, None], c2f - c1f).add_(c1f)  # (b, 3, S, S); in place: memory-bound

    # -- distractors: capsules (blobs or thin lines) under the object --
    n_dis = torch.zeros(b, dtype=torch.int64, device=device)
    if cfg.max_distractors:
        D = cfg.max_distractors
        n_dis = (u[:, _S["n_distractors"]] * (D + 1)).long().clamp(max=D)
        for j in range(D):
            idx = (n_dis > j).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            v = u[idx, _DISTRACTOR_BASE + 8 * j: _DISTRACTOR_BASE + 8 * j + 8]
            is_line = v[:, 0] < 0.5
            ax, ay = (0.1 + 0.8 * v[:, 1]) * S, (0.1 + 0.8 * v[:, 2]) * S
            ang = v[:, 3] * (2 * math.pi)
            length = torch.where(is_line, (0.2 + 0.2 * v[:, 4]) * S, torch.zeros_like(ax))
            rad = torch.where(is_line, torch.full_like(ax, 0.7 * S / 32.0),
                              (0.04 + 0.05 * v[:, 5]) * S)  # lines ~1.4 px thick at 32×32
            bx, by = torch.cos(ang) * length, torch.sin(ang) * length
            inv = 1.0 / (bx * bx + by * by).clamp(min=1e-6)
            col = _hsv_to_rgb(v[:, 6], 0.3 + 0.7 * v[:, 7], 0.35 + 0.5 * v[:, 7]).float()
            ax, ay, bx, by, inv, rad = (
                a.float()[:, None, None] for a in (ax, ay, bx, by, inv, rad)
            )
            pax = px[None, None, :] - ax
            pay = px[None, :, None] - ay
            h = ((pax * bx + pay * by) * inv).clamp(0, 1)  # nearest point on the segment
            a = (0.5 - (_length(pax - bx * h, pay - by * h) - rad)).clamp(0, 1)[:, None]
            sub = img.index_select(0, idx)
            img.index_copy_(0, idx, sub.add_((col[:, :, None, None] - sub).mul_(a)))

    # -- object on top, then noise, then quantise --
    obj = obj_rgb.float()[:, :, None, None]
    img.sub_(obj).mul_(1.0 - alpha[:, None]).add_(obj)  # = img + (obj - img) * alpha
    sigma = cfg.noise_std * u[:, _S["noise"]]
    if cfg.noise_std > 0:
        img.add_(_triangular_noise(z[:, _S["noise_key"]], S, sigma))
    images = img.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)
    f32 = lambda a: a.to(torch.float32)  # noqa: E731
    factors = {
        "class": labels,
        "hue": f32(hue), "saturation": f32(sat), "value": f32(val),
        "scale": f32(scale), "x": f32(x), "y": f32(y), "rotation": f32(rotation),
        "background": bg_kind, "background_hue": f32(bg_hue), "background_value": f32(bg_val),
        "n_distractors": n_dis, "noise": f32(sigma),
    }
    return images, dist < 0, labels, factors


def _colour_name(h: float, s: float, v: float) -> str:
    """A colour word for HSV in [0, 1]: greys by value when unsaturated, else a hue name."""
    if v < 0.2:
        return "black"
    if s < 0.25:
        return "white" if v > 0.8 else "grey"
    deg = (h % 1.0) * 360.0
    return next(name for bound, name in _HUE_NAMES if deg < bound)


def _position_phrase(x: float, y: float) -> str:
    """"in the top left", "at the bottom", "on the right", "in the centre", ..."""
    col = "left" if x < 0.42 else "right" if x > 0.58 else ""
    row = "top" if y < 0.42 else "bottom" if y > 0.58 else ""
    if row and col:
        return f"in the {row} {col}"
    if row:
        return f"at the {row}"
    if col:
        return f"on the {col}"
    return "in the centre"


def _size_word(scale: float) -> str:
    return next(word for bound, word in _SIZE_WORDS if scale < bound)


@dataclass
class ShapeWorldBatch:
    """A batch of ShapeWorld images with everything that generated them.

    Attributes:
        images: uint8 ``(n, 3, S, S)``.
        masks: bool ``(n, S, S)``, True on the object (distractors are never part of it).
        labels: int64 ``(n,)``, ``labels[i] = (start + i) % num_classes``.
        factors: dict of ``(n,)`` tensors: ``class``, ``hue``, ``saturation``, ``value`` (object
            colour, HSV in [0, 1]), ``scale`` (bounding diameter / image side), ``x``, ``y``
            (object centre, fractions of the image side, y downwards), ``rotation`` (radians,
            counter-clockwise), ``background`` (index into ``BACKGROUNDS``), ``background_hue``,
            ``background_value``, ``n_distractors``, ``noise`` (noise std on the 0-1 scale).
        classes: the class names; ``classes[label]``.
    """

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    factors: dict[str, torch.Tensor]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index) -> ShapeWorldBatch:
        """Select samples with a slice, an index tensor/list or a bool mask (an int → length 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return ShapeWorldBatch(
            self.images[index], self.masks[index], self.labels[index],
            {k: v[index] for k, v in self.factors.items()}, self.classes,
        )

    def __repr__(self) -> str:
        n, _, s, _ = self.images.shape
        return f"ShapeWorldBatch(n={n}, image_size={s}, classes={len(self.classes)})"

    def to(self, device) -> ShapeWorldBatch:
        """The same batch on ``device``."""
        return ShapeWorldBatch(
            self.images.to(device), self.masks.to(device), self.labels.to(device),
            {k: v.to(device) for k, v in self.factors.items()}, self.classes,
        )

    def captions(self) -> list[str]:
        """One sentence per image built from its factors: ``n`` strings, e.g.
        ``"a small red star in the top left on a striped background"``.

        Size word from ``scale`` (small < 0.5 ≤ medium < 0.65 ≤ large), colour word from the
        object's HSV, position phrase from ``x, y`` (thirds-like bands around the centre),
        background word from ``background``.
        """
        f = {k: v.tolist() for k, v in self.factors.items()}
        out = []
        for i, label in enumerate(self.labels.tolist()):
            colour = _colour_name(f["hue"][i], f["saturation"][i], f["value"][i])
            background = _BACKGROUND_WORDS[BACKGROUNDS[f["background"][i]]]
            out.append(
                f"a {_size_word(f['scale'][i])} {colour} {self.classes[label]} "
                f"{_position_phrase(f['x'][i], f['y'][i])} on a {background} background"
            )
        return out


def render(
    config: ShapeWorldConfig | str,
    n: int,
    *,
    seed: int = 0,
    start: int = 0,
    device="cpu",
    chunk_size: int = 512,
) -> ShapeWorldBatch:
    """Draw ``n`` ShapeWorld images: samples ``start .. start + n - 1`` of the stream ``seed``.

    Args:
        config: a ``ShapeWorldConfig`` or a preset name (``"easy"``, ``"standard"``, ``"hard"``).
        n: number of images (≥ 0).
        seed: integer ≥ 0. Sample ``i`` is a pure function of ``(config, seed, start + i)``:
            ``render(c, 10, start=5)`` equals ``render(c, 100)[5:15]`` bit for bit, for every
            ``chunk_size``.
        start: index of the first sample (≥ 0); its label is ``start % num_classes``.
        device: where to draw (the images stay there).
        chunk_size: images drawn per vectorised step (memory ∝ chunk_size · S²; 256-1024 is
            fastest on CPU).

    Returns:
        ``ShapeWorldBatch`` with ``images`` uint8 ``(n, 3, S, S)``, ``masks`` bool ``(n, S, S)``,
        ``labels`` int64 ``(n,)`` and ``factors`` (each ``(n,)``).
    """
    if isinstance(config, str):
        config = preset(config)
    if not isinstance(config, ShapeWorldConfig):
        raise TypeError(f"config must be a ShapeWorldConfig or a preset name, got {config!r}")
    check_positive_int("n", n, allow_zero=True)
    check_positive_int("seed", seed, allow_zero=True)
    check_positive_int("start", start, allow_zero=True)
    check_positive_int("chunk_size", chunk_size)
    device = torch.device(device)
    S = config.image_size
    images = torch.empty(n, 3, S, S, dtype=torch.uint8, device=device)
    masks = torch.empty(n, S, S, dtype=torch.bool, device=device)
    labels = torch.empty(n, dtype=torch.int64, device=device)
    factors: dict[str, torch.Tensor] = {}
    for c0 in range(0, n, chunk_size):
        b = min(chunk_size, n - c0)
        img, msk, lab, fac = _render_chunk(config, seed, start + c0, b, device)
        images[c0:c0 + b], masks[c0:c0 + b], labels[c0:c0 + b] = img, msk, lab
        for k, v in fac.items():
            if k not in factors:
                factors[k] = torch.empty(n, dtype=v.dtype, device=device)
            factors[k][c0:c0 + b] = v
    if n == 0:
        _, _, _, fac = _render_chunk(config, seed, start, 0, device)
        factors = {k: v.new_empty(0) for k, v in fac.items()}
    return ShapeWorldBatch(images, masks, labels, factors, config.classes)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------
@dataclass(repr=False)
class Splits:
    """The evaluation protocol's data: unlabeled images, a small labeled set, val and test.

    Attributes:
        unlabeled: uint8 ``(m, 3, S, S)`` for pretraining (no labels).
        train_x, train_y: the labeled set, uint8 ``(K·n, 3, S, S)`` and int64 ``(K·n,)``, ``n``
            per class, ordered so that ``labeled_subset(k)`` (the first ``k`` of each class) is
            itself a valid smaller labeled set.
        val_x, val_y, test_x, test_y: held-out images and labels (val for choosing
            hyperparameters, test for the final number).
        classes: class names, ``classes[label]``.
        name: e.g. ``"shapeworld-hard"`` or ``"cifar10"``.
        info: how the splits were made (preset, seed, sizes...), for the record.
    """

    unlabeled: torch.Tensor
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    name: str
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Image side ``S``."""
        return self.train_x.shape[-1]

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.train_x.device

    def labeled_subset(self, per_class: int | str | None = None):
        """The first ``per_class`` labeled examples of each class, in their original order.

        Returns ``(x, y)``: uint8 ``(K·per_class, 3, S, S)`` and int64 ``(K·per_class,)``.
        ``per_class=None`` or ``"all"`` returns the whole labeled set.
        """
        if per_class is None or per_class == "all":
            return self.train_x, self.train_y
        check_positive_int("per_class", per_class)
        counts = torch.bincount(self.train_y, minlength=self.num_classes)
        available = int(counts.min())
        check_range("per_class", per_class, 1, available,
                    hint=f"the labeled set has {available} examples per class")
        keep = torch.zeros_like(self.train_y, dtype=torch.bool)
        for k in range(self.num_classes):
            keep[(self.train_y == k).nonzero().squeeze(1)[:per_class]] = True
        return self.train_x[keep], self.train_y[keep]

    def to(self, device) -> Splits:
        """The same splits with every tensor on ``device``."""
        t = lambda a: a.to(device)  # noqa: E731
        return Splits(
            t(self.unlabeled), t(self.train_x), t(self.train_y), t(self.val_x), t(self.val_y),
            t(self.test_x), t(self.test_y), self.classes, self.name, dict(self.info),
        )

    def summary(self) -> str:
        """A short deterministic description (sizes, image size, classes), for notebooks."""
        counts = torch.bincount(self.train_y.cpu(), minlength=self.num_classes)
        lo, hi = int(counts.min()), int(counts.max())
        per = f"{lo} per class" if lo == hi else f"{lo}-{hi} per class"
        S = self.image_size
        return "\n".join([
            f"{self.name}: {S}x{S} RGB images, {self.num_classes} classes",
            f"  classes:   {', '.join(self.classes)}",
            f"  unlabeled: {len(self.unlabeled):>7,d}",
            f"  train:     {len(self.train_y):>7,d}  ({per})",
            f"  val:       {len(self.val_y):>7,d}",
            f"  test:      {len(self.test_y):>7,d}",
        ])

    def __repr__(self) -> str:
        return (f"Splits(name={self.name!r}, unlabeled={len(self.unlabeled)}, "
                f"train={len(self.train_y)}, val={len(self.val_y)}, test={len(self.test_y)}, "
                f"image_size={self.image_size}, classes={self.num_classes})")


def _check_balanced(name: str, value: int, k: int) -> int:
    check_positive_int(name, value, allow_zero=True)
    if value % k:
        raise ValueError(
            f"{name}={value!r} is invalid: must be a multiple of the number of classes ({k}) "
            f"so that every class is equally represented"
        )
    return value


def shapeworld_splits(
    preset: str = "hard",
    n_unlabeled: int = 10_000,
    labels_per_class: int = 100,
    n_val: int = 1_000,
    n_test: int = 2_000,
    image_size: int = 32,
    seed: int = 0,
    device="cpu",
    **overrides,
) -> Splits:
    """Render ShapeWorld's unlabeled, labeled, val and test sets from one seed.

    The splits are consecutive, disjoint index ranges of the same stream: unlabeled
    ``[0, m)``, train the next ``K · labels_per_class``, then val, then test. So no image is in
    two splits and each split is deterministic. (Changing one size shifts the ranges after it,
    so their images change too: keep the sizes fixed when comparing runs.)

    Args:
        preset: ``"easy"``, ``"standard"`` or ``"hard"``; ``overrides`` are ``ShapeWorldConfig``
            fields applied on top (e.g. ``max_rotation=0``).
        n_unlabeled: ``m`` ≥ 0 images for pretraining.
        labels_per_class: ``n`` ≥ 1 labeled images per class.
        n_val, n_test: sizes, multiples of the number of classes ``K`` (class-balanced).
        image_size: 24, 32 or 64.

    Returns:
        ``Splits`` with ``unlabeled`` ``(m, 3, S, S)``, ``train_x`` ``(K·n, 3, S, S)``,
        ``val_x`` ``(n_val, 3, S, S)``, ``test_x`` ``(n_test, 3, S, S)`` (uint8) and int64
        labels, all on ``device``.
    """
    cfg = _preset(preset, image_size=image_size, **overrides)
    K = cfg.num_classes
    check_positive_int("n_unlabeled", n_unlabeled, allow_zero=True)
    check_positive_int("labels_per_class", labels_per_class)
    _check_balanced("n_val", n_val, K)
    _check_balanced("n_test", n_test, K)
    n_train = K * labels_per_class
    sizes = (n_unlabeled, n_train, n_val, n_test)
    starts = [sum(sizes[:i]) for i in range(4)]
    unl, tr, va, te = (
        render(cfg, m, seed=seed, start=s0, device=device)
        for m, s0 in zip(sizes, starts, strict=True)
    )
    info = dict(preset=preset, seed=seed, starts=tuple(starts), sizes=sizes, config=cfg)
    return Splits(
        unl.images, tr.images, tr.labels, va.images, va.labels, te.images, te.labels,
        cfg.classes, f"shapeworld-{preset}", info,
    )


# --------------------------------------------------------------------------------------------
# Real datasets
# --------------------------------------------------------------------------------------------
class DatasetNotFoundError(FileNotFoundError):
    """A real dataset's files are missing (or unusable) and were not, or could not be, downloaded.

    The message says which dataset, where it looked, and what to do.
    """


_STL10_CLASSES = (
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
)
# Where torchvision looks for each dataset under ``root``, the files it needs, and the archive.
_REAL_FILES = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        files=("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta"),
        archive="cifar-10-python.tar.gz (163 MB, https://www.cs.toronto.edu/~kriz/cifar.html)",
        extract="tar -xzf cifar-10-python.tar.gz -C {root}",
    ),
    "stl10": dict(
        folder="stl10_binary",
        files=("train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin"),
        archive="stl10_binary.tar.gz (2.6 GB, https://cs.stanford.edu/~acoates/stl10/)",
        extract="tar -xzf stl10_binary.tar.gz -C {root}",
    ),
    "mnist": dict(
        folder=os.path.join("MNIST", "raw"),
        files=("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"),
        archive="the four *-ubyte.gz files (11 MB, https://ossci-datasets.s3.amazonaws.com/mnist/)",
        extract="gunzip {root}/MNIST/raw/*.gz",
    ),
}


def _not_found(name: str, root: Path, missing: Sequence[str], cause: str = "") -> str:
    spec = _REAL_FILES[name]
    folder = root / spec["folder"]
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    lines = [
        f"{name}: dataset files not found in '{folder}{os.sep}' (missing: {shown})." if missing
        else f"{name}: could not load the dataset from '{folder}{os.sep}'.",
    ]
    if cause:
        lines.append(f"Cause: {cause}")
    lines += [
        "To fix it, either:",
        f"  - online: load_real({name!r}, root={str(root)!r}, download=True) downloads "
        f"{spec['archive']} and extracts it there; or",
        f"  - offline: copy the extracted folder '{spec['folder']}{os.sep}' (containing "
        f"{', '.join(spec['files'])}) into '{root}{os.sep}', e.g. "
        f"`{spec['extract'].format(root=root)}`.",
        "No data at all? The course's quick profile runs on ShapeWorld: shapeworld_splits().",
    ]
    return "\n".join(lines)


def _tv_load(name: str, root: Path, download: bool, make):
    """Build a torchvision dataset, turning its errors into a ``DatasetNotFoundError``."""
    spec = _REAL_FILES[name]
    folder = root / spec["folder"]
    if not download:
        missing = [f for f in spec["files"] if not (folder / f).is_file()]
        if missing:
            raise DatasetNotFoundError(_not_found(name, root, missing))
    try:
        return make()
    except DatasetNotFoundError:
        raise
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        cause = (f"{err} The files exist but fail torchvision's md5 check (an interrupted "
                 f"download or a different version): delete '{folder}' and download again."
                 if not download else str(err))
        raise DatasetNotFoundError(_not_found(name, root, [], cause)) from err
    except OSError as err:  # no network, DNS failure, refused connection, disk full...
        cause = f"download failed ({type(err).__name__}: {err}); are you offline?"
        raise DatasetNotFoundError(_not_found(name, root, [], cause)) from err


def _resize(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 ``(N, 3, H, W)`` → uint8 ``(N, 3, size, size)``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    out = torch.empty(images.shape[0], images.shape[1], size, size, dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        x = images[i:i + chunk].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
        out[i:i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _pick_labeled(y: torch.Tensor, per_class: int, n_val: int, K: int, seed: int):
    """Indices of the labeled and val sets in a labeled pool ``y`` (N,) after a seeded shuffle.

    Labeled = the first ``per_class`` of each class in shuffled order, val = the next
    ``n_val / K`` of each class; both returned in shuffled order, ``(K·per_class,)`` and
    ``(n_val,)`` int64.
    """
    counts = torch.bincount(y, minlength=K)
    need = per_class + n_val // K
    if int(counts.min()) < need:
        raise ValueError(
            f"labels_per_class={per_class} and n_val={n_val} are invalid for this dataset: they "
            f"need {need} images per class but the smallest class has {int(counts.min())}; "
            f"allowed: labels_per_class + n_val/{K} <= {int(counts.min())}"
        )
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    y_perm = y[order]
    lab, val = [], []
    for k in range(K):
        pos = (y_perm == k).nonzero().squeeze(1)
        lab.append(pos[:per_class])
        val.append(pos[per_class:need])
    lab = torch.cat(lab).sort().values
    val = torch.cat(val).sort().values
    return order[lab], order[val]


def load_real(
    name: str,
    root: str | os.PathLike = "data",
    *,
    download: bool = False,
    labels_per_class: int = 100,
    n_val: int = 1_000,
    device="cpu",
    image_size: int | None = None,
    seed: int = 0,
) -> Splits:
    """Load CIFAR-10, STL-10 or MNIST as ``Splits`` (uint8 ``(N, 3, S, S)`` images).

    - ``"cifar10"``: unlabeled = all 50,000 training images (standard in self-supervised
      learning: the labeled images are among them); train = the first ``labels_per_class`` of
      each class after a shuffle with ``seed``; val = ``n_val`` further training images
      (class-balanced, not in train); test = the 10,000 test images. S = 32.
    - ``"stl10"``: unlabeled = the 100,000-image unlabeled split; train and val are drawn the
      same way from the 5,000 labeled training images; test = the 8,000 test images. S = 96;
      pass ``image_size`` (e.g. 64 or 32) to downsample with antialiasing.
    - ``"mnist"``: grayscale copied to 3 channels, 28×28 zero-padded to 32×32; unlabeled = the
      60,000 training images, train/val drawn from them as for CIFAR; test = 10,000.

    Files are read from ``root`` where torchvision keeps them (``root/cifar-10-batches-py/``,
    ``root/stl10_binary/``, ``root/MNIST/raw/``) and downloaded there only if
    ``download=True``. torchvision checks every file's md5 (CIFAR's are pickles: the checksum
    is what makes unpickling them safe). Missing files raise ``DatasetNotFoundError`` (a
    ``FileNotFoundError``) saying where it looked and how to fix it.

    Args:
        labels_per_class: ``n`` ≥ 1; ``n_val``: a multiple of 10; ``image_size``: None (native)
            or 8-512; ``seed``: the shuffle that picks the labeled and val images.

    Returns:
        ``Splits`` on ``device``.
    """
    check_choice("name", name, REAL_DATASETS)
    check_choice("download", download, (True, False))
    check_positive_int("labels_per_class", labels_per_class)
    _check_balanced("n_val", n_val, 10)
    check_positive_int("seed", seed, allow_zero=True)
    if image_size is not None:
        check_positive_int("image_size", image_size)
        check_range("image_size", image_size, 8, 512)
    root = Path(root)

    from torchvision import datasets  # imported here: `import sslkit.data` stays fast

    def tensor(a) -> torch.Tensor:
        return a if isinstance(a, torch.Tensor) else torch.from_numpy(a)

    if name == "cifar10":
        train = _tv_load(name, root, download,
                         lambda: datasets.CIFAR10(str(root), train=True, download=download))
        test = _tv_load(name, root, False,
                        lambda: datasets.CIFAR10(str(root), train=False, download=False))
        # .data is (N, 32, 32, 3) uint8 HWC
        pool_x = tensor(train.data).permute(0, 3, 1, 2).contiguous()
        pool_y = torch.as_tensor(train.targets, dtype=torch.int64)
        test_x = tensor(test.data).permute(0, 3, 1, 2).contiguous()
        test_y = torch.as_tensor(test.targets, dtype=torch.int64)
        unlabeled, classes = pool_x, tuple(train.classes)
    elif name == "stl10":
        train = _tv_load(name, root, download,
                         lambda: datasets.STL10(str(root), split="train", download=download))

        class Verified(datasets.STL10):  # md5 of all 2.7 GB was checked just above: once is enough
            def _check_integrity(self) -> bool:
                return True

        unl = Verified(str(root), split="unlabeled")
        test = Verified(str(root), split="test")
        # .data is (N, 3, 96, 96) uint8 (a transposed view of the column-major file)
        pool_x, pool_y = tensor(train.data), tensor(train.labels).long()
        test_x, test_y = tensor(test.data), tensor(test.labels).long()
        unlabeled = tensor(unl.data)
        classes = tuple(getattr(train, "classes", None) or _STL10_CLASSES)
        del unl
    else:
        train = _tv_load(name, root, download,
                         lambda: datasets.MNIST(str(root), train=True, download=download))
        test = _tv_load(name, root, False,
                        lambda: datasets.MNIST(str(root), train=False, download=False))

        def rgb32(a: torch.Tensor) -> torch.Tensor:  # (N, 28, 28) → (N, 3, 32, 32)
            return F.pad(a, (2, 2, 2, 2))[:, None].expand(-1, 3, -1, -1).contiguous()

        pool_x, pool_y = rgb32(train.data), train.targets.long()
        test_x, test_y = rgb32(test.data), test.targets.long()
        unlabeled = pool_x
        classes = tuple(c.split(" - ")[-1] for c in train.classes)
    K = len(classes)
    lab_idx, val_idx = _pick_labeled(pool_y, labels_per_class, n_val, K, seed)
    size = image_size or pool_x.shape[-1]
    same = unlabeled is pool_x
    unlabeled = _resize(unlabeled, size)
    pool_x = unlabeled if same else _resize(pool_x, size)
    test_x = _resize(test_x, size)
    splits = Splits(
        unlabeled, pool_x[lab_idx], pool_y[lab_idx], pool_x[val_idx], pool_y[val_idx],
        test_x, test_y, classes, name,
        dict(root=str(root), seed=seed, labels_per_class=labels_per_class, n_val=n_val),
    )
    return splits.to(device)
