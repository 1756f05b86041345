"""Real datasets fabricated in torchvision's on-disk format (no network in tests): tiny CIFAR-10
and STL-10 folders whose pixels encode each image's label and index, so a test can check that
every image kept its label, orientation and channels."""

from __future__ import annotations

import os
import pickle

import numpy as np

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def skip_md5(monkeypatch) -> None:
    """Fabricated files cannot match torchvision's md5 sums: check only that they exist."""
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.stl10 as tv_stl10

    def exists(fpath, md5=None):
        return os.path.isfile(fpath)

    monkeypatch.setattr(tv_cifar, "check_integrity", exists)
    monkeypatch.setattr(tv_stl10, "check_integrity", exists)


def cifar_image(i: int, label: int) -> np.ndarray:
    """A 3072-byte CIFAR row: red encodes the label, green the index, blue a gradient."""
    img = np.zeros((3, 32, 32), dtype=np.uint8)
    img[0] = 10 * label
    img[1] = i % 256
    img[2] = np.arange(32, dtype=np.uint8)[None, :] * 4  # varies along the width
    return img.reshape(-1)


def write_cifar(root, per_class_per_batch: int = 2, test_per_class: int = 2) -> np.ndarray:
    """``root/cifar-10-batches-py/``: five training batches of ``10 · per_class_per_batch``
    images (green = index 0, 1, ...) and a test batch of ``10 · test_per_class`` (green = 7).
    Returns the training labels in file order."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels_all = []
    i = 0
    for b in range(1, 6):
        labels = [k for k in range(10) for _ in range(per_class_per_batch)]
        rows = []
        for label in labels:
            rows.append(cifar_image(i, label))
            i += 1
        with open(folder / f"data_batch_{b}", "wb") as f:
            pickle.dump({"batch_label": f"training batch {b} of 5", "labels": labels,
                         "data": np.stack(rows), "filenames": [f"{j}.png" for j in labels]}, f)
        labels_all += labels
    test_labels = list(range(10)) * test_per_class
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": test_labels,
                     "data": np.stack([cifar_image(7, k) for k in test_labels]),
                     "filenames": ["t.png"] * len(test_labels)}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_NAMES, "num_cases_per_batch": 10 * per_class_per_batch,
                     "num_vis": 3072}, f)
    return np.array(labels_all)


def write_stl(root):
    """``root/stl10_binary/``: 40 labeled training images (4 per class), 12 unlabeled and 20
    test images of random pixels. Returns the training and unlabeled images, ``(n, 3, 96, 96)``."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def write(name, n):
        imgs = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)
        # STL-10 stores each channel column-major
        imgs.transpose(0, 1, 3, 2).tofile(folder / name)
        return imgs

    train = write("train_X.bin", 40)
    np.array([k + 1 for k in range(10)] * 4, dtype=np.uint8).tofile(folder / "train_y.bin")
    unlabeled = write("unlabeled_X.bin", 12)
    write("test_X.bin", 20)
    np.array([k + 1 for k in range(10)] * 2, dtype=np.uint8).tofile(folder / "test_y.bin")
    return train, unlabeled
