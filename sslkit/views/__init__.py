"""Views: batched image augmentations with per-sample randomness, computed on the images' device.

A *view* is a random transformation of an image that keeps what it depicts. Joint-embedding
methods (SimCLR, BYOL, DINO, VICReg, ...) learn by making two views of one image agree, so the
views decide *what* the network may ignore: crops teach "where" does not matter, colour jitter
teaches "which colour" does not matter. Three ideas shape this module.

1. **Every image gets its own random parameters.** ``augment`` draws one crop box, flip, angle,
   jitter factor, ... per sample (one ``torch.rand(B, n)`` call), then applies them all in a
   few batched tensor operations. ``torchvision.transforms.v2`` applied to a batch tensor draws
   *one* parameter set for the whole batch (every image gets the same crop), which is why a
   ``DataLoader`` normally applies it per sample in worker processes (``tests/test_views.py``
   shows both behaviours).
2. **Geometry is one resampling.** Random resized crop, horizontal flip and rotation are one
   affine map from output pixels to input pixels, so they are fused into a single sampling
   grid + ``grid_sample`` (bilinear) call: no intermediate crop, no second resize. Crop boxes
   are drawn as ``RandomResizedCrop`` draws them but not rounded to whole pixels; corners that
   a rotation uncovers are mirrored rather than filled with black, which would give the angle
   away.
3. **Colour ops are batched arithmetic.** Brightness, contrast, saturation and hue follow
   ``torchvision``'s ``ColorJitter`` formulas (same grayscale weights, same clamping; hue is an
   exact HSV rotation, not a YIQ approximation), with per-sample factors. An image not selected
   by ``jitter_p`` gets the identity factors (1, 1, 1, hue 0) — a mask on the *parameters*,
   never a Python branch per sample. Grayscale, blur (an exact Gaussian kernel per sample) and
   solarize, which have no identity factor, replace the selected images only.

Pipeline (fixed order): crop+flip+rotate → brightness → contrast → saturation → hue → channel
permutation → grayscale → blur → solarize → inversion → normalisation. ``ColorJitter`` shuffles
the order of its four ops on every call; we keep its default order (a per-sample random order
would cost extra passes for a difference no method in the course depends on). The ``uint8`` →
float conversion happens once; the division by 255 rides on the brightness factor and
inversion rides on the normalisation (one ``addcmul`` writes the output). The measurements
behind these choices (against torchvision and kornia) are in ``benchmarks/README.md``.

References: *A Simple Framework for Contrastive Learning of Visual Representations* (2020,
arXiv 2002.05709); *Bootstrap your own latent* (2020, arXiv 2006.07733); *Emerging Properties
in Self-Supervised Vision Transformers* (2021, arXiv 2104.14294).
"""

from __future__ import annotations

from .colour import _blur_radius, _brightness, _contrast, _hue, _saturation  # noqa: F401 (tests)
from .pipeline import MEAN, STD, augment, multi_crop, to_float, to_uint8, two_views
from .recipes import (
    Recipe,
    byol_recipes,
    check_recipe,
    crop_flip_recipe,
    dino_recipes,
    simclr_recipe,
)

__all__ = [
    "MEAN", "STD", "Recipe", "check_recipe", "crop_flip_recipe", "simclr_recipe", "byol_recipes",
    "dino_recipes", "augment", "two_views", "multi_crop", "to_float", "to_uint8",
]
