"""What varies in ShapeWorld, and how much: the classes, ``ShapeWorldConfig`` and the presets.

Every *factor of variation* (class, colour, size, position, rotation, background texture, noise,
clutter) is known and can be switched off or limited. That makes ShapeWorld a laboratory: a
notebook can ask "which augmentation removes which nuisance factor?" or "does the representation
encode colour or shape?" and read the answer off ``ShapeWorldBatch.factors``.

``preset("hard")`` follows the setting of the course's first CPU calibration (random colours,
textures, noise, clutter, free rotation), whose targets are a random-init CNN with a linear
probe near chance (about 10-17 %) and supervised training on 1,000 labels at about 60 % or
more: the object stays the dominant thing in the image (drawn last, with a higher HSV value
than the background's base colour and a hue at least 90° away from it), but colours, textures
and clutter must be learned away. Re-measure those two numbers after changing a preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .._validate import check_choice, check_positive_int, check_range, check_unit_interval_pair
from ._hash import _MAX_DISTRACTORS

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
