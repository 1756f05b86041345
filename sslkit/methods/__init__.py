"""Pretraining methods: each is a backbone, its heads, its loss and its step rules.

Every method subclasses :class:`Method` and is trained by :func:`sslkit.train.fit`.

- pretext tasks: :class:`RotNet`, :class:`Jigsaw`, :class:`PositionPrediction`;
- contrastive: :class:`SimCLR`, :class:`MoCo`, :class:`SupCon` (uses labels);
- the baseline: :class:`Supervised` (cross-entropy on the labelled images only).
"""

from .base import Method
from .moco import MoCo
from .pretext import Jigsaw, PositionPrediction, RotNet
from .simclr import SimCLR
from .supcon import SupCon
from .supervised import Supervised

__all__ = [
    "Method", "Supervised", "RotNet", "Jigsaw", "PositionPrediction", "SimCLR", "MoCo",
    "SupCon",
]
