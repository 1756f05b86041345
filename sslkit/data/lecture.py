"""``lecture_splits``: a lecture's data, ShapeWorld or a real dataset, from its sizes alone.

A lecture asks for ``data.lecture_splits(S)`` and never names its dataset: ``S.dataset`` (see
``sslkit.profiles``: ShapeWorld in ``quick``; in ``full`` CIFAR-10 or STL-10 when their files
are in ``SSLKIT_DATA``, or what ``SSLKIT_DATASET`` names) picks ShapeWorld's rendered splits or
a real dataset read from ``S.data_root`` by ``load_real``, downloaded there first when its files
are missing (only a dataset named in ``SSLKIT_DATASET`` can be missing). The lecture's code
below that line is the same for both.

The sizes mean the same thing for both, with one difference a real dataset imposes: it has a
fixed number of images, so ``n_unlabeled`` and ``n_test`` are *caps* there (a seeded subset
when the dataset has more, all of them when it has fewer), where ShapeWorld renders exactly
that many. ``Splits.summary()`` prints what was used.
"""

from __future__ import annotations

import torch

from .._validate import check_choice, check_positive_int
from .real import REAL_DATASETS, files_present, load_real
from .splits import Splits, _check_balanced, shapeworld_splits

DATASETS: tuple[str, ...] = ("shapeworld", *REAL_DATASETS)
_SIZES = ("n_unlabeled", "labels_per_class", "n_val", "n_test")


def _seeded_order(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def _cap_test(x: torch.Tensor, y: torch.Tensor, n_test: int, K: int, seed: int):
    """At most ``n_test`` test images, the same number of each class where the set has more:
    the first ``n_test / K`` of each class after a seeded shuffle, kept in their file order."""
    if n_test >= len(y):
        return x, y
    order = _seeded_order(len(y), seed)
    keep = torch.cat([order[y[order] == k][: n_test // K] for k in range(K)]).sort().values
    return x[keep], y[keep]


def lecture_splits(S, *, device=None, **sizes) -> Splits:
    """The splits a lecture trains and evaluates on, from its sizes ``S`` (``sslkit.sizes``).

    Args:
        S: a lecture's sizes; reads ``dataset``, ``data_root``, ``preset``, ``image_size``,
            ``seed`` and the four sizes below.
        device: where the tensors go (default: stay on the CPU).
        sizes: ``n_unlabeled``, ``labels_per_class``, ``n_val`` or ``n_test`` instead of
            ``S``'s (a panel's smaller pool, for instance).

    Returns:
        ``Splits``: ShapeWorld's ``shapeworld_splits(S.preset, ...)`` when ``S.dataset`` is
        ``"shapeworld"``; otherwise ``load_real(S.dataset, S.data_root, ...)`` at
        ``S.image_size``, its unlabeled pool and test set capped at ``n_unlabeled`` and
        ``n_test`` (seeded subsets; the test subset class-balanced), with ``info["capped"]``
        saying what was taken. A dataset whose files are missing is downloaded (torchvision
        prints its progress); offline that raises ``DatasetNotFoundError``, whose message says
        where the files were expected and how to put them there.

    Examples:
        >>> S = sslkit.sizes("03_contrastive_simclr")   # SSLKIT_DATASET=cifar10 in `full`
        >>> splits = data.lecture_splits(S, device=env.device)
    """
    unknown = sorted(set(sizes) - set(_SIZES))
    if unknown:
        raise TypeError(f"lecture_splits() got unexpected size(s) {unknown}; allowed: {_SIZES}")
    n_unlabeled, labels_per_class, n_val, n_test = (
        sizes.get(name, getattr(S, name)) for name in _SIZES)
    dataset = check_choice("S.dataset", getattr(S, "dataset", "shapeworld"), DATASETS)
    if dataset == "shapeworld":
        splits = shapeworld_splits(S.preset, n_unlabeled=n_unlabeled,
                                   labels_per_class=labels_per_class, n_val=n_val,
                                   n_test=n_test, image_size=S.image_size, seed=S.seed)
        return splits if device is None else splits.to(device)
    check_positive_int("n_unlabeled", n_unlabeled)
    splits = load_real(dataset, S.data_root, labels_per_class=labels_per_class, n_val=n_val,
                       image_size=S.image_size, seed=S.seed,
                       download=not files_present(dataset, S.data_root))
    _check_balanced("n_test", n_test, splits.num_classes)
    unlabeled, unlabeled_y = splits.unlabeled, splits.unlabeled_y
    if n_unlabeled < len(unlabeled):
        keep = _seeded_order(len(unlabeled), S.seed)[:n_unlabeled].sort().values
        unlabeled = unlabeled[keep]
        unlabeled_y = None if unlabeled_y is None else unlabeled_y[keep]
    test_x, test_y = _cap_test(splits.test_x, splits.test_y, n_test, splits.num_classes,
                               S.seed)
    info = dict(splits.info, capped=dict(n_unlabeled=(n_unlabeled, len(unlabeled)),
                                         n_test=(n_test, len(test_y))))
    splits = Splits(unlabeled, splits.train_x, splits.train_y, splits.val_x, splits.val_y,
                    test_x, test_y, splits.classes, splits.name, info, unlabeled_y)
    return splits if device is None else splits.to(device)
