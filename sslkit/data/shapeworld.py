"""ShapeWorld, the course's procedurally generated dataset: ``render`` → ``ShapeWorldBatch``.

The course must run on a CPU laptop, offline, in about a minute per training cell. CIFAR-10
needs a 163 MB download and hours of training before self-supervised methods separate from
their baselines. ShapeWorld is drawn on the fly (``benchmarks/shapeworld.py`` measures how
fast), needs no file, and returns with every image the factors that generated it and a
caption. Sample ``i`` is a pure function of ``(config, seed, start + i)`` (see ``_hash``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validate import check_positive_int
from ._draw import _render_chunk
from .config import BACKGROUNDS, ShapeWorldConfig, preset

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
