"""``Splits``, the evaluation protocol's data, and ShapeWorld's splits from one seed.

A ``Splits`` holds unlabeled images for pretraining, a small class-balanced labeled set, a val
set for choosing hyperparameters and a test set for the final number, all uint8 on one device.
``shapeworld_splits`` renders them as disjoint index ranges of one ShapeWorld stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .._validate import check_positive_int, check_range
from .config import preset as _preset  # `shapeworld_splits` has an argument named `preset`
from .shapeworld import render


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
        unlabeled_y: int64 ``(m,)``, the labels of the unlabeled images where the dataset has
            them (ShapeWorld, CIFAR-10, MNIST), ``None`` where it does not (STL-10's unlabeled
            split). For scoring only (how pure are mined neighbours, clusters): a method that
            trained on them would be supervised.
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
    unlabeled_y: torch.Tensor | None = None

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
        t = lambda a: a.to(device)
        return Splits(
            t(self.unlabeled), t(self.train_x), t(self.train_y), t(self.val_x), t(self.val_y),
            t(self.test_x), t(self.test_y), self.classes, self.name, dict(self.info),
            None if self.unlabeled_y is None else t(self.unlabeled_y),
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

    Examples:
        >>> splits = shapeworld_splits("easy", n_unlabeled=5000, labels_per_class=100)
        >>> splits.unlabeled.shape, splits.labeled_subset(10)[0].shape
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
        cfg.classes, f"shapeworld-{preset}", info, unl.labels,
    )
