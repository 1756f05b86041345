"""Real datasets: CIFAR-10, STL-10 and MNIST as the same ``Splits`` as ShapeWorld.

They are read with ``torchvision.datasets`` (which verifies each file's md5; CIFAR's files are
pickles, and the checksum is what makes unpickling them safe) and converted from the datasets'
``.data`` arrays in one step. Without the files ``load_real`` raises ``DatasetNotFoundError``
saying where it looked and what to do; it touches the network only with ``download=True``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from .._validate import check_choice, check_positive_int, check_range
from .splits import Splits, _check_balanced

REAL_DATASETS: tuple[str, ...] = ("cifar10", "stl10", "mnist")


class DatasetNotFoundError(FileNotFoundError):
    """A real dataset's files are missing (or unusable) and were not, or could not be, downloaded.

    The message says which dataset, where it looked, and what to do.
    """


_STL10_CLASSES = (
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
)
# Where torchvision looks for each dataset under ``root``, the files it needs, and the archive.
_REAL_FILES = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        files=("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta"),
        archive="cifar-10-python.tar.gz (163 MB, https://www.cs.toronto.edu/~kriz/cifar.html)",
        extract="tar -xzf cifar-10-python.tar.gz -C {root}",
    ),
    "stl10": dict(
        folder="stl10_binary",
        files=("train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin"),
        archive="stl10_binary.tar.gz (2.6 GB, https://cs.stanford.edu/~acoates/stl10/)",
        extract="tar -xzf stl10_binary.tar.gz -C {root}",
    ),
    "mnist": dict(
        folder=os.path.join("MNIST", "raw"),
        files=("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"),
        archive="the four *-ubyte.gz files (11 MB, https://ossci-datasets.s3.amazonaws.com/mnist/)",
        extract="gunzip {root}/MNIST/raw/*.gz",
    ),
}


def files_present(name: str, root: str | os.PathLike) -> bool:
    """Whether every file ``load_real(name, root)`` reads is under ``root`` (``~`` expanded);
    their checksums are checked when they are loaded, not here."""
    spec = _REAL_FILES[check_choice("name", name, REAL_DATASETS)]
    folder = Path(root).expanduser() / spec["folder"]
    return all((folder / f).is_file() for f in spec["files"])


def _not_found(name: str, root: Path, missing: Sequence[str], cause: str = "") -> str:
    spec = _REAL_FILES[name]
    folder = root / spec["folder"]
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    lines = [
        f"{name}: dataset files not found in '{folder}{os.sep}' (missing: {shown})." if missing
        else f"{name}: could not load the dataset from '{folder}{os.sep}'.",
    ]
    if cause:
        lines.append(f"Cause: {cause}")
    lines += [
        "To fix it, either:",
        f"  - online: load_real({name!r}, root={str(root)!r}, download=True) downloads "
        f"{spec['archive']} and extracts it there; or",
        f"  - offline: copy the extracted folder '{spec['folder']}{os.sep}' (containing "
        f"{', '.join(spec['files'])}) into '{root}{os.sep}', e.g. "
        f"`{spec['extract'].format(root=root)}`.",
        "No data at all? The course's quick profile runs on ShapeWorld: shapeworld_splits().",
    ]
    return "\n".join(lines)


def _tv_load(name: str, root: Path, download: bool, make):
    """Build a torchvision dataset, turning its errors into a ``DatasetNotFoundError``."""
    spec = _REAL_FILES[name]
    folder = root / spec["folder"]
    if not download:
        missing = [f for f in spec["files"] if not (folder / f).is_file()]
        if missing:
            raise DatasetNotFoundError(_not_found(name, root, missing))
    try:
        return make()
    except DatasetNotFoundError:
        raise
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        cause = (f"{err} The files exist but fail torchvision's md5 check (an interrupted "
                 f"download or a different version): delete '{folder}' and download again."
                 if not download else str(err))
        raise DatasetNotFoundError(_not_found(name, root, [], cause)) from err
    except OSError as err:  # no network, DNS failure, refused connection, disk full...
        cause = f"download failed ({type(err).__name__}: {err}); are you offline?"
        raise DatasetNotFoundError(_not_found(name, root, [], cause)) from err


def _resize(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 ``(N, 3, H, W)`` → uint8 ``(N, 3, size, size)``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    out = torch.empty(images.shape[0], images.shape[1], size, size, dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        x = images[i:i + chunk].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
        out[i:i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _pick_labeled(y: torch.Tensor, per_class: int, n_val: int, K: int, seed: int):
    """Indices of the labeled and val sets in a labeled pool ``y`` (N,) after a seeded shuffle.

    Labeled = the first ``per_class`` of each class in shuffled order, val = the next
    ``n_val / K`` of each class; both returned in shuffled order, ``(K·per_class,)`` and
    ``(n_val,)`` int64.
    """
    counts = torch.bincount(y, minlength=K)
    need = per_class + n_val // K
    if int(counts.min()) < need:
        raise ValueError(
            f"labels_per_class={per_class} and n_val={n_val} are invalid for this dataset: they "
            f"need {need} images per class but the smallest class has {int(counts.min())}; "
            f"allowed: labels_per_class + n_val/{K} <= {int(counts.min())}"
        )
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    y_perm = y[order]
    lab, val = [], []
    for k in range(K):
        pos = (y_perm == k).nonzero().squeeze(1)
        lab.append(pos[:per_class])
        val.append(pos[per_class:need])
    lab = torch.cat(lab).sort().values
    val = torch.cat(val).sort().values
    return order[lab], order[val]


def load_real(
    name: str,
    root: str | os.PathLike = "data",
    *,
    download: bool = False,
    labels_per_class: int = 100,
    n_val: int = 1_000,
    device="cpu",
    image_size: int | None = None,
    seed: int = 0,
) -> Splits:
    """Load CIFAR-10, STL-10 or MNIST as ``Splits`` (uint8 ``(N, 3, S, S)`` images).

    - ``"cifar10"``: unlabeled = all 50,000 training images (standard in self-supervised
      learning: the labeled images are among them); train = the first ``labels_per_class`` of
      each class after a shuffle with ``seed``; val = ``n_val`` further training images
      (class-balanced, not in train); test = the 10,000 test images. S = 32.
    - ``"stl10"``: unlabeled = the 100,000-image unlabeled split; train and val are drawn the
      same way from the 5,000 labeled training images; test = the 8,000 test images. S = 96;
      pass ``image_size`` (e.g. 64 or 32) to downsample with antialiasing.
    - ``"mnist"``: grayscale copied to 3 channels, 28×28 zero-padded to 32×32; unlabeled = the
      60,000 training images, train/val drawn from them as for CIFAR; test = 10,000.

    Files are read from ``root`` (``~`` expanded) where torchvision keeps them
    (``root/cifar-10-batches-py/``, ``root/stl10_binary/``, ``root/MNIST/raw/``) and downloaded
    there only if ``download=True``. torchvision checks every file's md5 (CIFAR's are pickles:
    the checksum is what makes unpickling them safe). Missing files raise
    ``DatasetNotFoundError`` (a ``FileNotFoundError``) saying where it looked and how to fix it.

    Args:
        labels_per_class: ``n`` ≥ 1; ``n_val``: a multiple of 10; ``image_size``: None (native)
            or 8-512; ``seed``: the shuffle that picks the labeled and val images.

    Returns:
        ``Splits`` on ``device``; its ``unlabeled_y`` holds the unlabeled images' labels for
        CIFAR-10 and MNIST (their pool is the labeled training set) and is ``None`` for STL-10.
    """
    check_choice("name", name, REAL_DATASETS)
    check_choice("download", download, (True, False))
    check_positive_int("labels_per_class", labels_per_class)
    _check_balanced("n_val", n_val, 10)
    check_positive_int("seed", seed, allow_zero=True)
    if image_size is not None:
        check_positive_int("image_size", image_size)
        check_range("image_size", image_size, 8, 512)
    root = Path(root).expanduser()

    from torchvision import datasets  # imported here: `import sslkit.data` stays fast

    def tensor(a) -> torch.Tensor:
        return a if isinstance(a, torch.Tensor) else torch.from_numpy(a)

    if name == "cifar10":
        train = _tv_load(name, root, download,
                         lambda: datasets.CIFAR10(str(root), train=True, download=download))
        test = _tv_load(name, root, False,
                        lambda: datasets.CIFAR10(str(root), train=False, download=False))
        # .data is (N, 32, 32, 3) uint8 HWC
        pool_x = tensor(train.data).permute(0, 3, 1, 2).contiguous()
        pool_y = torch.as_tensor(train.targets, dtype=torch.int64)
        test_x = tensor(test.data).permute(0, 3, 1, 2).contiguous()
        test_y = torch.as_tensor(test.targets, dtype=torch.int64)
        unlabeled, classes = pool_x, tuple(train.classes)
    elif name == "stl10":
        train = _tv_load(name, root, download,
                         lambda: datasets.STL10(str(root), split="train", download=download))

        class Verified(datasets.STL10):  # md5 of all 2.7 GB was checked just above: once is enough
            def _check_integrity(self) -> bool:
                return True

        unl = Verified(str(root), split="unlabeled")
        test = Verified(str(root), split="test")
        # .data is (N, 3, 96, 96) uint8 (a transposed view of the column-major file)
        pool_x, pool_y = tensor(train.data), tensor(train.labels).long()
        test_x, test_y = tensor(test.data), tensor(test.labels).long()
        unlabeled = tensor(unl.data)
        classes = tuple(getattr(train, "classes", None) or _STL10_CLASSES)
        del unl
    else:
        train = _tv_load(name, root, download,
                         lambda: datasets.MNIST(str(root), train=True, download=download))
        test = _tv_load(name, root, False,
                        lambda: datasets.MNIST(str(root), train=False, download=False))

        def rgb32(a: torch.Tensor) -> torch.Tensor:  # (N, 28, 28) → (N, 3, 32, 32)
            return F.pad(a, (2, 2, 2, 2))[:, None].expand(-1, 3, -1, -1).contiguous()

        pool_x, pool_y = rgb32(train.data), train.targets.long()
        test_x, test_y = rgb32(test.data), test.targets.long()
        unlabeled = pool_x
        classes = tuple(c.split(" - ")[-1] for c in train.classes)
    K = len(classes)
    lab_idx, val_idx = _pick_labeled(pool_y, labels_per_class, n_val, K, seed)
    size = image_size or pool_x.shape[-1]
    same = unlabeled is pool_x
    unlabeled = _resize(unlabeled, size)
    pool_x = unlabeled if same else _resize(pool_x, size)
    test_x = _resize(test_x, size)
    splits = Splits(
        unlabeled, pool_x[lab_idx], pool_y[lab_idx], pool_x[val_idx], pool_y[val_idx],
        test_x, test_y, classes, name,
        dict(root=str(root), seed=seed, labels_per_class=labels_per_class, n_val=n_val),
        pool_y if same else None,  # STL-10's unlabeled split has no labels
    )
    return splits.to(device)
