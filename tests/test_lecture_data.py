"""A lecture's data from its sizes: ``data.lecture_splits`` and ``SSLKIT_DATASET``.

ShapeWorld through ``lecture_splits`` is exactly ``shapeworld_splits``; a real dataset is read
from torchvision's files (fabricated here, in the on-disk format: no network in tests) and capped
at the lecture's sizes, or downloaded when missing; the profile picks a real dataset in ``full``
when its files are there, refuses one in ``quick`` and keeps lectures that need ShapeWorld on
it; and every lecture's data cell, executed in ``full`` with ``SSLKIT_DATASET=cifar10``, reads
CIFAR-10.
"""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest
import torch
from real_data_helpers import skip_md5, write_cifar, write_stl

import sslkit
from sslkit import data, gpu_check, profiles
from sslkit.data import DatasetNotFoundError, lecture_splits, load_real, shapeworld_splits

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("unlabeled", "train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


def _sizes(root, dataset="cifar10", **kw):
    base = dict(dataset=dataset, data_root=str(root), preset="hard", image_size=32, seed=3,
                n_unlabeled=60, labels_per_class=3, n_val=20, n_test=30)
    return SimpleNamespace(**{**base, **kw})


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """A CIFAR-10 folder of 200 training images (20 per class) and 50 test images."""
    skip_md5(monkeypatch)
    labels = write_cifar(tmp_path, per_class_per_batch=4, test_per_class=5)
    return tmp_path, torch.as_tensor(labels)


# ------------------------------------------------------------------------------ lecture_splits
def test_shapeworld_through_lecture_splits_is_shapeworld_splits():
    S = _sizes("unused", dataset="shapeworld", preset="easy", n_unlabeled=40, n_test=20)
    got = lecture_splits(S)
    ref = shapeworld_splits("easy", n_unlabeled=40, labels_per_class=3, n_val=20, n_test=20,
                            seed=3)
    assert all(torch.equal(getattr(got, f), getattr(ref, f)) for f in FIELDS)
    assert got.name == "shapeworld-easy"
    # the pool's labels are the rendered stream's: index mod K
    assert torch.equal(got.unlabeled_y, torch.arange(40) % got.num_classes)
    smaller = lecture_splits(S, n_unlabeled=10, labels_per_class=1)
    assert len(smaller.unlabeled) == 10 and len(smaller.train_y) == got.num_classes
    assert torch.equal(smaller.unlabeled, got.unlabeled[:10])
    with pytest.raises(TypeError, match="seed"):
        lecture_splits(S, seed=1)


def test_cifar_through_lecture_splits_caps_the_pool_and_the_test_set(cifar):
    root, labels = cifar
    S = _sizes(root)
    sp = lecture_splits(S)
    full = load_real("cifar10", root, labels_per_class=3, n_val=20, seed=3)
    assert sp.name == "cifar10"
    for f in ("train_x", "train_y", "val_x", "val_y"):   # the labeled protocol is load_real's
        assert torch.equal(getattr(sp, f), getattr(full, f)), f
    # unlabeled: 60 distinct training images (green = file index), each with its file's label
    ids = sp.unlabeled[:, 1, 0, 0].long()
    assert len(ids) == 60 and len(set(ids.tolist())) == 60
    assert torch.equal(sp.unlabeled_y, labels[ids])
    # test: 30 of the 50, three per class, each image with its label (red = 10 · label)
    assert torch.bincount(sp.test_y, minlength=10).tolist() == [3] * 10
    assert torch.equal(sp.test_x[:, 0, 0, 0].long(), 10 * sp.test_y)
    assert sp.info["capped"] == {"n_unlabeled": (60, 60), "n_test": (30, 30)}
    # seeded: the same seed takes the same images, another seed others
    assert torch.equal(lecture_splits(S).unlabeled, sp.unlabeled)
    other = lecture_splits(_sizes(root, seed=4))
    assert not torch.equal(other.unlabeled, sp.unlabeled)
    # sizes above the dataset's take all of it, in file order
    everything = lecture_splits(_sizes(root, n_unlabeled=10_000, n_test=10_000))
    assert torch.equal(everything.unlabeled, full.unlabeled)
    assert torch.equal(everything.test_y, full.test_y)
    assert everything.info["capped"] == {"n_unlabeled": (10_000, 200), "n_test": (10_000, 50)}
    with pytest.raises(ValueError, match="n_test=35"):
        lecture_splits(S, n_test=35)


def test_stl10_through_lecture_splits_has_no_pool_labels(tmp_path, monkeypatch):
    skip_md5(monkeypatch)
    write_stl(tmp_path)
    sp = lecture_splits(_sizes(tmp_path, dataset="stl10", labels_per_class=2, n_val=10,
                               n_test=20))
    assert sp.unlabeled.shape == (12, 3, 32, 32) and sp.train_x.shape == (20, 3, 32, 32)
    assert sp.unlabeled_y is None and sp.to("cpu").unlabeled_y is None


def test_a_missing_real_dataset_is_downloaded_and_offline_says_where_it_looked(tmp_path,
                                                                                 monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    tried = []

    def offline(url, download_root, **kwargs):
        tried.append(download_root)
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed.*offline") as info:
        lecture_splits(_sizes(tmp_path / "nowhere"))
    assert tried == [str(tmp_path / "nowhere")]
    assert "cifar-10-batches-py" in str(info.value)
    with pytest.raises(ValueError, match="S.dataset"):
        lecture_splits(_sizes(tmp_path, dataset="imagenet"))


def test_present_files_are_read_without_a_download(cifar, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded although the files are there")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", refuse)
    root, _ = cifar
    assert lecture_splits(_sizes(root)).name == "cifar10"


# ------------------------------------------------------------------------------ the profile
def test_the_profile_reads_the_dataset_and_its_root(monkeypatch):
    monkeypatch.delenv("SSLKIT_DATASET", raising=False)
    monkeypatch.delenv("SSLKIT_DATA", raising=False)
    S = sslkit.sizes("03_contrastive_simclr", "quick")
    assert S.dataset == "shapeworld" and S.data_root == "~/.cache/sslkit/data"
    monkeypatch.setenv("SSLKIT_DATASET", "shapeworld")
    assert sslkit.sizes("03_contrastive_simclr", "full").dataset == "shapeworld"
    monkeypatch.setenv("SSLKIT_DATASET", "CIFAR10")
    monkeypatch.setenv("SSLKIT_DATA", "/data/sets")
    S = sslkit.sizes("03_contrastive_simclr", "full")
    assert (S.dataset, S.data_root) == ("cifar10", "/data/sets")
    with pytest.raises(ValueError, match="SSLKIT_PROFILE=full"):
        sslkit.sizes("03_contrastive_simclr", "quick")
    monkeypatch.setenv("SSLKIT_DATASET", "imagenet")
    with pytest.raises(ValueError, match="SSLKIT_DATASET"):
        sslkit.sizes("03_contrastive_simclr", "full")


def test_full_picks_a_real_dataset_whose_files_are_there(tmp_path, monkeypatch):
    monkeypatch.delenv("SSLKIT_DATASET", raising=False)
    monkeypatch.setenv("SSLKIT_DATA", str(tmp_path))
    assert sslkit.sizes("03_contrastive_simclr", "full").dataset == "shapeworld"   # none there
    write_stl(tmp_path)
    assert sslkit.sizes("03_contrastive_simclr", "full").dataset == "stl10"
    assert sslkit.sizes("05_clustering", "full").dataset == "shapeworld"  # needs pool labels
    write_cifar(tmp_path)
    for stem in ("00_tour_and_protocol", "03_contrastive_simclr", "05_clustering"):
        assert sslkit.sizes(stem, "full").dataset == "cifar10", stem
    assert sslkit.sizes("02_pretext_tasks", "full").dataset == "shapeworld"
    assert sslkit.sizes("03_contrastive_simclr", "quick").dataset == "shapeworld"


def test_a_lecture_that_needs_shapeworld_stays_on_it_and_says_so(monkeypatch):
    monkeypatch.setenv("SSLKIT_DATASET", "cifar10")
    with pytest.warns(UserWarning, match="02_pretext_tasks runs on shapeworld"):
        S = sslkit.sizes("02_pretext_tasks", "full")
    assert S.dataset == "shapeworld"
    monkeypatch.setenv("SSLKIT_DATASET", "stl10")
    with pytest.warns(UserWarning, match="05_clustering"):
        assert sslkit.sizes("05_clustering", "full").dataset == "shapeworld"
    assert sslkit.sizes("07_redundancy_reduction", "full").dataset == "stl10"


# Labeled training images per class in each real dataset (MNIST: its smallest class, the 5s).
LABELED_PER_CLASS = {"cifar10": 5_000, "stl10": 500, "mnist": 5_421}


@pytest.mark.parametrize("dataset", sorted(LABELED_PER_CLASS))
def test_every_lectures_full_sizes_fit_each_real_dataset_it_runs_on(monkeypatch, dataset):
    """The labeled and val sets come from the dataset's labeled training images: a lecture
    whose sizes ask for more would fail on a GPU after the download, not here."""
    monkeypatch.setenv("SSLKIT_DATASET", dataset)
    for stem in profiles._NOTEBOOKS:
        if dataset not in profiles._NOTEBOOK_DATASETS.get(stem, data.DATASETS):
            continue
        S = sslkit.sizes(stem, "full")
        assert S.dataset == dataset
        need = S.labels_per_class + S.n_val // 10
        assert need <= LABELED_PER_CLASS[dataset], (stem, need)


# ------------------------------------------------------------------------------ lectures, GPU check
def _data_cells(path: Path) -> list[str]:
    """A lecture's code cells up to the one that builds ``splits``, and that cell's first block
    (up to its first blank line: the lines that build and print the data, not the trainings
    some data cells go on to)."""
    code = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"]
    last = next(i for i, s in enumerate(code) if "data.lecture_splits(S" in s)
    return code[:last] + [code[last].split("\n\n")[0]]


LECTURES = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
            if "data.lecture_splits(S" in p.read_text()]


def test_every_lecture_with_data_builds_it_with_lecture_splits():
    stems = {p.stem[:2] for p in LECTURES}
    assert stems == {"00", "03", "04", "05", "06", "07", "08"}, stems
    for p in LECTURES:
        assert "shapeworld_splits" not in p.read_text(), p.name


@pytest.fixture(scope="module")
def cifar_for_full_sizes(tmp_path_factory):
    """CIFAR-10 files with 1,000 training images per class: the full profile's 500 labels per
    class (lecture 00) plus its 500 val images per class."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar(root, per_class_per_batch=200, test_per_class=3)
    return root


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.stem)
def test_a_lectures_data_cell_reads_cifar10_in_full(path, cifar_for_full_sizes, monkeypatch):
    skip_md5(monkeypatch)
    matplotlib.use("Agg")
    monkeypatch.setenv("SSLKIT_PROFILE", "full")
    monkeypatch.setenv("SSLKIT_DATASET", "cifar10")
    monkeypatch.setenv("SSLKIT_DATA", str(cifar_for_full_sizes))
    monkeypatch.setattr(profiles, "device", lambda: torch.device("cpu"))
    namespace: dict = {"display": print}
    for i, source in enumerate(_data_cells(path)):
        exec(compile(source, f"<{path.stem} cell {i}>", "exec"), namespace)
    splits = namespace["splits"]
    assert splits.name == "cifar10" and splits.num_classes == 10
    assert len(splits.unlabeled) == 10_000 and len(splits.test_y) == 30
    assert len(splits.train_y) == 10 * namespace["S"].labels_per_class
    if "pool_labels" in namespace:   # lecture 05 scores on the pool's labels
        assert torch.equal(namespace["pool_labels"], splits.unlabeled_y)


def test_the_gpu_check_runs_on_cifar10(cifar, monkeypatch, tmp_path, capsys):
    root, _ = cifar
    monkeypatch.setenv("SSLKIT_DATASET", "cifar10")
    monkeypatch.setenv("SSLKIT_DATA", str(root))
    out = tmp_path / "gpu"
    assert gpu_check.main(["--smoke", "--lectures", "03", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == {"03_contrastive_simclr": "cifar10"}
    assert "03_contrastive_simclr        cifar10" in capsys.readouterr().out
