"""The ``full`` profile (GPU) is valid on any machine: every size a lecture reads exists there, and
the lectures' methods built with the full sizes train for two steps.

The full sizes are never executed in CI (they are meant for a GPU), so a wrong name, shape or
size would otherwise first fail in a lab. The sizes here are the profile's own; only the pool
and the batch are shrunk, so that ResNet-18 runs two steps on a CPU in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch

import sslkit
from sslkit import data, evaluate, models, profiles, views
from sslkit.methods import (
    SCAN,
    SLA,
    WMSE,
    BarlowTwins,
    DeepCluster,
    Jigsaw,
    MoCo,
    OBoW,
    PositionPrediction,
    RotNet,
    SeLa,
    SimCLR,
    SupCon,
    Supervised,
    SwAV,
    VICReg,
    mine_neighbours,
)
from sslkit.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "solutions").glob("*.ipynb"))


def _code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_size_a_notebook_reads_exists_in_both_profiles(path):
    code = _code(path)
    bindings = dict(re.findall(r'\b(\w+) = sslkit\.sizes\("(\w+)"', code))  # S, S03, …
    assert bindings or not re.search(r"\bS\.\w", code), f"{path.name} reads S.… unbound"
    for var, stem in bindings.items():
        names = set(re.findall(rf"\b{var}\.(\w+)", code))
        for name in ("quick", "full"):
            S = sslkit.sizes(stem, name)
            missing = sorted(n for n in names if not hasattr(S, n))
            assert not missing, f"{path.name}: {stem} in profile {name!r} has no {missing}"


@pytest.mark.parametrize("stem", sorted(profiles._NOTEBOOKS))
def test_quick_and_full_define_the_same_sizes(stem):
    quick, full = (set(profiles._NOTEBOOKS[stem][p]) for p in ("quick", "full"))
    assert quick == full, f"only in quick: {quick - full}, only in full: {full - quick}"


# ----------------------------------------------------------------------------- two steps each
def _splits(S, n_unlabeled=128):
    return data.shapeworld_splits(S.preset, n_unlabeled=n_unlabeled, labels_per_class=2,
                                  n_val=20, n_test=20, image_size=S.image_size, seed=0)


def _two_steps(method, images, labels=None, lr=1e-3):
    torch.manual_seed(0)
    history = fit(method, images, labels, TrainConfig(steps=2, batch_size=8, lr=lr),
                  progress=False)
    assert history.step == [1, 2] and all(math.isfinite(v) for v in history.loss)
    return history


def _recipe(S):
    return dataclasses.replace(views.simclr_recipe(S.view_size, colour="strong"),
                               crop_scale=S.crop_scale)


def test_full_00_supervised_baseline():
    S = sslkit.sizes("00_tour_and_protocol", "full")
    splits = _splits(S)
    _two_steps(Supervised(models.backbone(S.backbone), splits.num_classes),
               splits.train_x, splits.train_y, lr=S.supervised_lr)


def test_full_02_pretext_tasks():
    S = sslkit.sizes("02_pretext_tasks", "full")
    splits = _splits(S)
    _two_steps(RotNet(models.backbone(S.backbone)), splits.unlabeled, lr=S.rotnet_lr)
    _two_steps(Jigsaw(models.backbone(S.backbone), grid=2, jitter=S.jigsaw_jitter),
               splits.unlabeled, lr=S.jigsaw_lr)
    vit = models.backbone("vit_tiny_nopos", image_size=S.image_size, **S.vit)
    _two_steps(PositionPrediction(vit, mask_ratio=S.position_mask_ratio), splits.unlabeled,
               lr=S.position_lr)
    for joint in (True, False):
        _two_steps(SLA(models.backbone(S.backbone), splits.num_classes, joint=joint),
                   splits.train_x, splits.train_y, lr=S.sla_lr)


def test_full_03_simclr_and_its_fair_baseline():
    S = sslkit.sizes("03_contrastive_simclr", "full")
    splits = _splits(S)
    for t in S.sweep_temperatures:
        _two_steps(SimCLR(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                          proj_dim=S.proj_dim, temperature=t, recipe=_recipe(S)),
                   splits.unlabeled, lr=S.lr)
    _two_steps(Supervised(models.backbone(S.backbone), splits.num_classes, recipe=_recipe(S)),
               splits.train_x, splits.train_y, lr=S.supervised_lr)


def test_full_04_moco_and_supcon():
    S = sslkit.sizes("04_contrastive_moco_supcon", "full")
    splits = _splits(S)
    for q in (S.queue_size, *S.sweep_queue_sizes):
        _two_steps(MoCo(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                        proj_dim=S.proj_dim, temperature=S.temperature, queue_size=q,
                        momentum=S.momentum, recipe=_recipe(S)), splits.unlabeled, lr=S.moco_lr)
    _two_steps(SupCon(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                      proj_dim=S.proj_dim, temperature=S.supcon_temperature,
                      recipe=_recipe(S)), splits.train_x, splits.train_y, lr=S.lr)
    assert S.nn_support <= S.n_unlabeled
    # The lecture runs MoCo at batch B/4, and each step enqueues two keys per image.
    assert min(S.queue_size, *S.sweep_queue_sizes) >= 2 * (S.batch_size // 4)


def test_full_05_clustering_methods():
    S = sslkit.sizes("05_clustering", "full")
    assert S.dc_pool <= S.n_unlabeled and S.sela_pool <= S.n_unlabeled
    n = max(128, S.dc_clusters + 1, S.sela_clusters + 1, S.scan_neighbours + 1)
    splits = _splits(S, n_unlabeled=n)
    pool = splits.unlabeled
    _two_steps(DeepCluster(models.backbone(S.backbone), pool_size=n, num_clusters=S.dc_clusters,
                           recipe=_recipe(S)), pool, lr=S.lr)
    _two_steps(SeLa(models.backbone(S.backbone), pool_size=n, num_clusters=S.sela_clusters,
                    epsilon=S.sela_epsilon, recipe=_recipe(S)), pool, lr=S.lr)
    _two_steps(SwAV(models.backbone(S.backbone), num_prototypes=S.num_prototypes,
                    proj_hidden=S.proj_hidden, proj_dim=S.proj_dim,
                    temperature=S.swav_temperature, epsilon=S.epsilon,
                    sinkhorn_iters=S.sinkhorn_iters, n_local=S.n_local, recipe=_recipe(S),
                    local_size=S.local_size, local_scale=S.local_scale,
                    freeze_prototypes_steps=S.freeze_prototypes_steps), pool, lr=S.lr)
    encoder = models.backbone(S.backbone)
    neighbours = mine_neighbours(evaluate.extract_features(encoder, pool), S.scan_neighbours)
    _two_steps(SCAN(encoder, neighbours, num_clusters=splits.num_classes,
                    entropy_weight=S.scan_entropy_weight, recipe=_recipe(S)), pool,
               lr=S.scan_lr)
    _two_steps(OBoW(models.backbone(S.backbone), num_words=S.obow_words,
                    momentum=S.obow_momentum, recipe=_recipe(S)), pool, lr=S.lr)


def test_full_07_redundancy_reduction_methods():
    S = sslkit.sizes("07_redundancy_reduction", "full")
    splits = _splits(S)
    pool = splits.unlabeled
    for weights in ({}, dict(var_weight=0.0), dict(cov_weight=0.0)):
        _two_steps(VICReg(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                          proj_dim=S.proj_dim, recipe=_recipe(S), **weights), pool, lr=S.lr)
    for lambd in (S.barlow_lambda, 0.0):
        _two_steps(BarlowTwins(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                               proj_dim=S.proj_dim, lambd=lambd, recipe=_recipe(S)), pool,
                   lr=S.lr)
    # W-MSE whitens each view's batch: it needs more images per batch than dimensions
    assert S.batch_size > S.wmse_dim
    torch.manual_seed(0)
    history = fit(WMSE(models.backbone(S.backbone), proj_hidden=S.proj_hidden,
                       proj_dim=S.wmse_dim, recipe=_recipe(S)), pool,
                  config=TrainConfig(steps=2, batch_size=S.wmse_dim + 8, lr=S.wmse_lr),
                  progress=False)
    assert all(math.isfinite(v) for v in history.loss)
    assert S.tldr_batch_size <= S.n_unlabeled and S.tldr_neighbours < S.n_unlabeled
    assert S.stepwise_out <= S.stepwise_dim
