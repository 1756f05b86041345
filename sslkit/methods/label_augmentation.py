"""Self-supervised label augmentation: predict the class *and* the rotation, jointly.

"Self-supervised Label Augmentation via Input Transformations" (Lee, Hwang & Shin, 2019, arXiv
1910.05872). A supervised method, not a pretraining one: it shows, with labels, the difference
between asking a network to be *invariant* to a transformation (rotation as data augmentation,
the same class label for every rotation) and asking it to *predict* the transformation (one
label per pair (class, rotation), ``4K`` classes). On objects with an upright orientation the
first hurts and the second helps: the same opposition decides what a contrastive method's
augmentations make its features ignore.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .._validate import check_positive_int
from ..pretext import rotation_batch
from .base import Method, accuracy

__all__ = ["SLA"]


class SLA(Method):
    """Supervised training on all four 90° rotations of each labelled view.

    Each step views every image once (``recipe``, default crop and flip), then puts its four
    rotations in the batch (:func:`sslkit.pretext.rotation_batch`, rotation-major)::

        images (B, 3, H, W), labels y (B,) → views → (4B, 3, S, S), rotations r (4B,)
        joint=True:  classifier → (4B, 4K) logits, target 4·y + r   (the paper's joint label)
        joint=False: classifier → (4B, K) logits,  target y         (rotation as augmentation)

    :meth:`predict` with ``aggregate=True`` uses the paper's *aggregated* inference: the joint
    logit of (class ``c``, rotation ``k``) for the input rotated by ``k``, averaged over the four
    ``k``; ``aggregate=False`` reads the logits of (``c``, 0°) of the input as it is (single
    inference, one forward pass).

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``, square inputs.
        num_classes: number of classes ``K``.
        joint: ``True`` for joint (class, rotation) labels, ``False`` for the invariance
            baseline (rotation as data augmentation).
        recipe: view before rotating (``None``: crop + flip at the images' size).

    Logs: ``train_acc`` on the ``4B`` rotated views (joint labels when ``joint``).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, joint: bool = True,
                 recipe: views.Recipe | None = None):
        super().__init__(backbone)
        check_positive_int("num_classes", num_classes)
        if not isinstance(joint, bool):
            raise ValueError(f"joint must be True or False, got {joint!r}")
        views.check_recipe(recipe)
        self.num_classes, self.joint, self.recipe = num_classes, joint, recipe
        self.classifier = nn.Linear(backbone.feature_dim, 4 * num_classes if joint else num_classes)
        self.hparams = dict(num_classes=num_classes, joint=joint, recipe=repr(recipe))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy on the ``4B`` rotated views against joint or plain class labels."""
        if labels is None:
            raise ValueError("SLA.training_step needs labels: pass labels= to fit()")
        x = views.augment(images, self.recipe or views.crop_flip_recipe(images.shape[-1]))
        x4, rotations = rotation_batch(x)                        # (4B, 3, S, S), (4B,)
        y4 = labels.repeat(4)                                    # rotation-major, as x4
        targets = 4 * y4 + rotations if self.joint else y4
        logits = self.classifier(self.backbone(x4))              # (4B, 4K) or (4B, K)
        loss = F.cross_entropy(logits, targets)
        return loss, {"train_acc": accuracy(logits, targets)}

    @torch.no_grad()
    def class_logits(self, x: torch.Tensor, aggregate: bool = True) -> torch.Tensor:
        """Class scores ``(B, K)`` for normalised float images ``(B, 3, S, S)``.

        Joint labels are ordered class-major (label ``4·c + k``), so ``view(B, K, 4)[..., k]``
        are the logits of rotation ``k``.
        """
        if not self.joint:
            return self.classifier(self.backbone(x))
        b = x.shape[0]
        if not aggregate:
            return self.classifier(self.backbone(x)).view(b, self.num_classes, 4)[..., 0]
        x4, _ = rotation_batch(x)
        joint = self.classifier(self.backbone(x4)).view(4, b, self.num_classes, 4)
        return torch.stack([joint[k, :, :, k] for k in range(4)]).mean(0)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, aggregate: bool = True) -> torch.Tensor:
        """Class predictions ``(B,)``: the arg-max of :meth:`class_logits`."""
        return self.class_logits(x, aggregate).argmax(1)
