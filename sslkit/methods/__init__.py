"""Pretraining methods: each is a backbone, its heads, its loss and its step rules.

Every method subclasses :class:`Method` and is trained by :func:`sslkit.train.fit`; one file per
method, named after it. The contract (``training_step``, ``uses_index``, ``on_epoch_start``,
``on_step_end``) is in :mod:`sslkit.methods.base`, with :func:`ema_update_`.

- pretext tasks: :class:`RotNet`, :class:`Jigsaw`, :class:`PositionPrediction`. Each invents a
  label from the image and trains a classifier head on it; the encoder is kept. A pretext is
  useful only if solving it requires what we later want to read from the features. Views are
  light (crop and flip, no colour): the pretext, not the augmentation, is what the network must
  solve. Each logs ``pretext_acc``, to plot against probe accuracy;
- contrastive: :class:`SimCLR`, :class:`MoCo`, :class:`SupCon` (uses labels);
- the baseline: :class:`Supervised` (cross-entropy on the labelled images only).
"""

from .base import Method, ema_update_, function_key
from .jigsaw import Jigsaw
from .moco import MoCo
from .position import PositionPrediction
from .rotnet import RotNet
from .simclr import SimCLR
from .supcon import SupCon
from .supervised import Supervised

__all__ = [
    "Method", "ema_update_", "function_key", "Supervised", "RotNet", "Jigsaw",
    "PositionPrediction", "SimCLR", "MoCo", "SupCon",
]
