"""Recipes: the distribution a view is drawn from, and the recipes of the papers.

A :class:`Recipe` is plain data (crop scale and ratio, flip, rotation, colour jitter, grayscale,
blur, solarize, inversion, output size): :func:`sslkit.views.augment` draws one view per image
from it. The recipes of SimCLR ("A Simple Framework for Contrastive Learning of Visual
Representations", 2020, arXiv 2002.05709), BYOL ("Bootstrap your own latent", 2020, arXiv
2006.07733) and DINO ("Emerging Properties in Self-Supervised Vision Transformers", 2021, arXiv
2104.14294) are scaled to small images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._validate import check_choice, check_positive_int, check_range, check_unit_interval_pair

__all__ = [
    "Recipe", "check_recipe", "crop_flip_recipe", "simclr_recipe", "byol_recipes", "dino_recipes",
]


def _check_pair(name: str, pair, low=None, high=None, *, low_open=False) -> tuple[float, float]:
    """A ``(low, high)`` pair of floats inside the interval with ``low <= high``."""
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={pair!r} is invalid: expected a pair (low, high)") from None
    for v in (lo, hi):
        check_range(name, v, low, high, low_open=low_open)
    if lo > hi:
        raise ValueError(f"{name}={pair!r} is invalid: low must be <= high")
    return lo, hi


@dataclass(frozen=True)
class Recipe:
    """One augmentation distribution; ``augment(images, recipe)`` samples from it per image.

    Geometry: ``size`` (output side ``S``), ``crop_scale`` (fraction of the image area kept, in
    (0, 1]), ``crop_ratio`` (aspect ratio width/height range, sampled log-uniformly),
    ``flip_p`` (horizontal flip), ``rotation_degrees`` (angle uniform in ±this, 0 = none).
    Colour: with probability ``jitter_p`` an image gets brightness/contrast/saturation factors
    uniform in ``[max(0, 1 - v), 1 + v]`` and a hue shift uniform in ``[-hue, hue]`` (fraction
    of the colour wheel, ≤ 0.5 = 180°); ``grayscale_p``; ``blur_p`` with σ uniform in
    ``blur_sigma`` (pixels of the output view); ``solarize_p`` (invert pixels ≥
    ``solarize_threshold``). ``channel_permute_p`` (shuffle R, G, B to a non-identity order) and
    ``invert_p`` (``x → 1 - x``) are the strong colour ops for ShapeWorld, whose object and
    background colours are random: without them, two views can be matched by colour alone.

    Every probability lies in [0, 1]; a bad value raises ``ValueError`` naming it.
    """

    size: int = 32
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = field(default=(0.1, 2.0))
    solarize_p: float = 0.0
    solarize_threshold: float = 0.5
    rotation_degrees: float = 0.0
    channel_permute_p: float = 0.0
    invert_p: float = 0.0

    def __post_init__(self):
        check_positive_int("size", self.size)
        scale = check_unit_interval_pair("crop_scale", self.crop_scale)
        object.__setattr__(self, "crop_scale", scale)
        object.__setattr__(
            self, "crop_ratio", _check_pair("crop_ratio", self.crop_ratio, 0.0, None, low_open=True)
        )
        object.__setattr__(
            self, "blur_sigma", _check_pair("blur_sigma", self.blur_sigma, 0.0, None, low_open=True)
        )
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p",
                     "channel_permute_p", "invert_p", "solarize_threshold"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("brightness", "contrast", "saturation"):
            check_range(name, getattr(self, name), 0.0, None)
        check_range("hue", self.hue, 0.0, 0.5, hint="hue is a fraction of the colour wheel")
        check_range("rotation_degrees", self.rotation_degrees, 0.0, 180.0)


def check_recipe(recipe) -> None:
    """``ValueError`` naming ``recipe`` unless it is a :class:`Recipe` or ``None`` (a method's
    default)."""
    if recipe is not None and not isinstance(recipe, Recipe):
        raise ValueError(f"recipe={recipe!r} is invalid: expected a sslkit.views.Recipe or None")


def crop_flip_recipe(size: int = 32) -> Recipe:
    """Label-preserving views with no colour change: random resized crop (scale 0.6-1) and
    horizontal flip, ``(B, 3, H, W)`` uint8 → ``(B, 3, size, size)``. The default of the
    supervised baseline and of the pretext methods, where the task, not the augmentation, is
    what the network must solve."""
    return Recipe(size=size, crop_scale=(0.6, 1.0), jitter_p=0.0, grayscale_p=0.0)


def simclr_recipe(size: int = 32, strength: float = 1.0, colour: str = "strong") -> Recipe:
    """The SimCLR view distribution, from *A Simple Framework for Contrastive Learning of Visual
    Representations* (2020, arXiv 2002.05709): random resized crop (scale 0.08-1), flip, colour
    jitter with probability 0.8 (brightness, contrast, saturation ``0.8·s``, hue ``0.2·s``),
    grayscale with probability 0.2; no blur, as in the paper's CIFAR-10 setting.

    ``colour``: ``"standard"`` is the paper's; ``"strong"`` (default) uses hue ``min(0.5, 0.5·s)``
    and adds channel permutation (p = 0.5) and inversion (p = 0.3), which ShapeWorld needs
    because its colours are random (linear probe 26 → 33 % in the CPU calibration);
    ``"none"`` keeps only the geometry. Returns a ``Recipe`` producing ``(B, 3, size, size)``.
    """
    check_positive_int("size", size)
    s = check_range("strength", strength, 0.0, None)
    check_choice("colour", colour, ("strong", "standard", "none"))
    if colour == "none":
        return Recipe(size=size, jitter_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0,
                      hue=0.0, grayscale_p=0.0)
    strong = colour == "strong"
    return Recipe(
        size=size, jitter_p=0.8, brightness=0.8 * s, contrast=0.8 * s, saturation=0.8 * s,
        hue=min(0.5, (0.5 if strong else 0.2) * s), grayscale_p=0.2,
        channel_permute_p=0.5 if strong else 0.0, invert_p=0.3 if strong else 0.0,
    )


def _small_image_sigma(size: int) -> tuple[float, float]:
    # The papers' σ ∈ [0.1, 2] is for 224-px images; at 32 px σ = 2 turns a shape into a blob,
    # so the upper end is capped at size / 32 pixels (1 px at 32, 2 px from 64 up).
    return (0.1, min(2.0, max(0.2, size / 32)))


def byol_recipes(size: int = 32) -> tuple[Recipe, Recipe]:
    """The two asymmetric BYOL view distributions, from *Bootstrap your own latent: A new approach
    to self-supervised learning* (2020, arXiv 2006.07733): both crop (0.08-1), flip, jitter
    with p = 0.8 (0.4, 0.4, 0.2, 0.1) and grayscale with p = 0.2; blur with p = 1.0 / 0.1 and
    solarize with p = 0 / 0.2. Returns ``(recipe_1, recipe_2)``, both ``(B, 3, size, size)``.
    """
    check_positive_int("size", size)
    common = dict(size=size, jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.2,
                  hue=0.1, grayscale_p=0.2, blur_sigma=_small_image_sigma(size))
    return (Recipe(blur_p=1.0, solarize_p=0.0, **common),
            Recipe(blur_p=0.1, solarize_p=0.2, **common))


def dino_recipes(size: int = 32, local_size: int = 16) -> tuple[Recipe, Recipe, Recipe]:
    """The DINO multi-crop distributions, from *Emerging Properties in Self-Supervised Vision
    Transformers* (2021, arXiv 2104.14294): two global crops (scale 0.4-1, ``size``; the first
    always blurred, the second blurred with p = 0.1 and solarized with p = 0.2) and a local crop
    (scale 0.05-0.4, ``local_size``, blurred with p = 0.5). All flip and use BYOL's colour jitter.
    Returns ``(global_1, global_2, local)``; pass them to ``multi_crop``.
    """
    check_positive_int("size", size)
    check_positive_int("local_size", local_size)
    colour = dict(jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
                  grayscale_p=0.2)
    g = dict(size=size, crop_scale=(0.4, 1.0), blur_sigma=_small_image_sigma(size), **colour)
    return (
        Recipe(blur_p=1.0, **g),
        Recipe(blur_p=0.1, solarize_p=0.2, **g),
        Recipe(size=local_size, crop_scale=(0.05, 0.4), blur_p=0.5,
               blur_sigma=_small_image_sigma(local_size), **colour),
    )
