"""Data: ShapeWorld, the procedurally generated default dataset, and real datasets as ``Splits``.

The modules, in reading order:

- ``config``: the factors of variation (``CLASSES``, ``BACKGROUNDS``), ``ShapeWorldConfig`` and
  the presets (``preset``).
- ``shapeworld``: ``render(config, n, seed, start)`` → ``ShapeWorldBatch`` (images, masks,
  labels, factors, captions).
- ``splits``: ``Splits``, the evaluation protocol's data, and ``shapeworld_splits``.
- ``real``: ``load_real``, CIFAR-10, STL-10 or MNIST as ``Splits``.
- ``lecture``: ``lecture_splits(S)``, a lecture's data from its sizes: ShapeWorld or, with
  ``SSLKIT_DATASET``, a real dataset (``DATASETS``).
- how an image is drawn: ``_draw`` (one chunk of images), ``_sdf`` (the shapes) and ``_hash``
  (counter-based random numbers).
"""

from __future__ import annotations

from .config import BACKGROUNDS, CLASSES, IMAGE_SIZES, PRESETS, ShapeWorldConfig, preset
from .lecture import DATASETS, lecture_splits
from .real import REAL_DATASETS, DatasetNotFoundError, load_real
from .shapeworld import ShapeWorldBatch, render
from .splits import Splits, shapeworld_splits

# isort: split
# Private names that tests/test_data.py reads as `data._name`, re-exported so that they keep the
# spelling they had when `sslkit.data` was one module.
from ._hash import _mix64 as _mix64
from ._hash import _mix64_int as _mix64_int
from ._hash import _sample_hashes as _sample_hashes
from ._hash import _signed64 as _signed64
from ._hash import _unit64 as _unit64
from ._sdf import _SDF as _SDF
from ._sdf import _sd_square as _sd_square
from .shapeworld import _BACKGROUND_WORDS as _BACKGROUND_WORDS

__all__ = [
    "BACKGROUNDS",
    "CLASSES",
    "DATASETS",
    "DatasetNotFoundError",
    "IMAGE_SIZES",
    "PRESETS",
    "REAL_DATASETS",
    "ShapeWorldBatch",
    "ShapeWorldConfig",
    "Splits",
    "lecture_splits",
    "load_real",
    "preset",
    "render",
    "shapeworld_splits",
]
