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
- clustering: :class:`DeepCluster` (k-means pseudo-labels), :class:`SeLa` (self-labelling
  balanced by Sinkhorn-Knopp), :class:`SwAV` (swapped prediction of balanced codes against
  prototypes), :class:`SCAN` (neighbours share a cluster), :class:`OBoW` (bags of visual
  words);
- self-distillation (no negatives): :class:`BYOL` (predictor and EMA target), :class:`SimSiam`
  (stop-gradient only), :class:`DINO` (centred, sharpened EMA teacher over prototypes);
- redundancy reduction: :class:`BarlowTwins` (cross-correlation to the identity),
  :class:`VICReg` (variance, invariance, covariance), :class:`WMSE` (whitening, then MSE);
- masked modelling: :class:`MAE` (hide most patches of a ViT's input, predict their pixels, or
  an EMA teacher's features as I-JEPA does);
- supervised: :class:`Supervised` (cross-entropy on the labelled images only: the baseline) and
  :class:`SLA` (joint (class, rotation) labels, or rotation as augmentation).
"""

from .barlow_twins import BarlowTwins
from .base import Method, ema_update_, function_key, momentum_at
from .byol import BYOL
from .deepcluster import DeepCluster
from .dino import DINO, DINOHead, update_center_
from .jigsaw import Jigsaw
from .label_augmentation import SLA
from .mae import MAE
from .moco import MoCo
from .obow import OBoW
from .position import PositionPrediction
from .rotnet import RotNet
from .scan import SCAN, mine_neighbours
from .sela import SeLa
from .simclr import SimCLR
from .simsiam import SimSiam
from .supcon import SupCon
from .supervised import Supervised
from .swav import SwAV
from .vicreg import VICReg
from .wmse import WMSE

__all__ = [
    "Method", "ema_update_", "momentum_at", "function_key", "Supervised", "RotNet", "Jigsaw",
    "PositionPrediction", "SimCLR", "MoCo", "SupCon", "DeepCluster", "SeLa",
    "SwAV", "SCAN", "mine_neighbours", "OBoW", "SLA",
    "BYOL", "SimSiam", "DINO", "DINOHead", "update_center_", "BarlowTwins", "VICReg", "WMSE",
    "MAE",
]
