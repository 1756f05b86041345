"""The clustering methods: DeepCluster, SeLa, SwAV, SCAN, OBoW.

Stand-in encoders make the targets checkable: a backbone whose feature is the image's mean
colour puts images of two colours in two k-means clusters, a head that prefers one class for
every image shows the naive self-labelling collapse, and a frozen backbone must stay untouched.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslkit import cluster, losses, models, views
from sslkit.methods import SCAN, DeepCluster, OBoW, SeLa, SwAV, mine_neighbours
from sslkit.methods.swav import code_logs
from sslkit.train import TrainConfig, fit

IDENTITY = views.Recipe(size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                        jitter_p=0.0, grayscale_p=0.0)


def _noise(n=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def _cnn() -> models.SmallCNN:
    return models.SmallCNN(widths=(8, 16, 32))


def _two_colours(n=16) -> torch.Tensor:
    """Images 0, 2, 4, … dark, 1, 3, 5, … bright (flat grey)."""
    images = torch.full((n, 3, 32, 32), 40, dtype=torch.uint8)
    images[1::2] = 215
    return images


class MeanColour(nn.Module):
    """Feature = (mean intensity, 1 − mean intensity) of the view, plus a learnable offset so
    that the optimiser has something to move."""

    feature_dim = 2

    def __init__(self):
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([m, -m], dim=1) + self.offset


BUILDERS = {
    "deepcluster": lambda: DeepCluster(_cnn(), pool_size=16, num_clusters=4),
    "sela": lambda: SeLa(_cnn(), pool_size=16, num_clusters=4),
    "swav": lambda: SwAV(_cnn(), num_prototypes=8, proj_dim=4, n_local=2, local_size=12),
    "scan": lambda: SCAN(_cnn(), torch.arange(16).roll(1)[:, None], num_clusters=4,
                         train_backbone=True),
    "obow": lambda: OBoW(_cnn(), num_words=8, vocabulary_images=8),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_two_steps_of_fit_give_finite_losses_and_move_the_backbone(name):
    torch.manual_seed(0)
    method = BUILDERS[name]()
    before = [p.detach().clone() for p in method.backbone.parameters()]
    history = fit(method, _noise(16), config=TrainConfig(steps=2, batch_size=8, warmup=0.0),
                  progress=False)
    assert len(history.loss) == 2 and all(math.isfinite(v) for v in history.loss)
    assert all(math.isfinite(v) for logs in history.logs.values() for v in logs)
    assert any(not torch.equal(a, b) for a, b in zip(before, method.backbone.parameters(),
                                                      strict=True))


@pytest.mark.parametrize("name", BUILDERS)
def test_hparams_name_every_constructor_argument(name):
    method = BUILDERS[name]()
    params = set(list(inspect.signature(type(method)).parameters)[1:])
    assert params <= set(method.hparams)


@pytest.mark.parametrize("make, name", [
    (lambda: SwAV(_cnn(), num_prototypes=1), "num_prototypes"),
    (lambda: SwAV(_cnn(), epsilon=0.0), "epsilon"),
    (lambda: SwAV(_cnn(), sinkhorn_iters=0), "sinkhorn_iters"),
    (lambda: SwAV(_cnn(), n_local=-1), "n_local"),
    (lambda: SwAV(_cnn(), temperature=0.0), "temperature"),
    (lambda: SwAV(_cnn(), sinkhorn_fn="sinkhorn"), "sinkhorn_fn"),
    (lambda: DeepCluster(_cnn(), pool_size=16, num_clusters=1), "num_clusters"),
    (lambda: DeepCluster(_cnn(), pool_size=16, num_clusters=17), "num_clusters"),
    (lambda: DeepCluster(_cnn(), pool_size=64, balanced=1), "balanced"),
    (lambda: DeepCluster(_cnn(), pool_size=64, monitor_labels=torch.zeros(3)),
     "monitor_labels"),
    (lambda: SeLa(_cnn(), pool_size=64, epsilon=-1.0), "epsilon"),
    (lambda: SeLa(_cnn(), pool_size=64, equipartition="yes"), "equipartition"),
    (lambda: SCAN(_cnn(), torch.zeros(16, 2)), "int64"),
    (lambda: SCAN(_cnn(), torch.zeros(16, 2, dtype=torch.long), entropy_weight=-1.0),
     "entropy_weight"),
    (lambda: OBoW(models.TinyViT(image_size=32, patch_size=8, dim=32, depth=1, heads=2)),
     "forward_features_map"),
    (lambda: OBoW(_cnn(), momentum=1.0), "momentum"),
    (lambda: OBoW(_cnn(), num_words=0), "num_words"),
])
def test_invalid_hyperparameters_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ----------------------------------------------------------------------------- SwAV
def test_code_logs_on_hand_made_codes():
    # two hard codes on prototypes 0 and 1 and two uniform ones over K = 4
    codes = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0.25] * 4, [0.25] * 4]])
    logs = code_logs(codes)
    assert logs["code_entropy"] == pytest.approx(math.log(4) / 2, rel=1e-6)
    # arg-max of the uniform rows is prototype 0: shares (3/4, 1/4, 0, 0)
    assert logs["largest_share"] == pytest.approx(0.75)
    assert logs["usage_entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)),
                                                  rel=1e-6)


def test_swav_loss_is_swapped_prediction_of_sinkhorn_codes_of_its_own_scores():
    torch.manual_seed(0)
    method = SwAV(_cnn(), num_prototypes=8, proj_dim=4, n_local=1, local_size=12)
    calls = []

    def spy(scores, epsilon, iters):
        calls.append((scores.shape, epsilon, iters, scores.requires_grad))
        return cluster.sinkhorn_knopp(scores, epsilon, iters)

    method.sinkhorn_fn = spy
    torch.manual_seed(1)
    loss, _ = method.training_step(_noise(8))
    torch.manual_seed(1)
    scores = method.scores(_noise(8))                                   # same views: same seed
    codes = torch.stack([cluster.sinkhorn_knopp(s, 0.05, 3) for s in scores[:2].detach()])
    expected = losses.swapped_prediction(scores, codes, 0.1)
    torch.testing.assert_close(loss, expected)
    assert scores.shape == (3, 8, 8)
    assert calls == [((8, 8), 0.05, 3, False)] * 2                      # the two global views


def test_swav_prototypes_get_no_gradient_while_frozen_and_stay_unit_length():
    torch.manual_seed(0)
    method = SwAV(_cnn(), num_prototypes=8, proj_dim=4, n_local=0, freeze_prototypes_steps=1)
    method.training_step(_noise(8))[0].backward()
    assert method.prototypes.weight.grad is None
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(8))
    method.on_step_end(1, None)
    method.training_step(_noise(8))[0].backward()
    assert method.prototypes.weight.grad is not None
    assert method.prototypes.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- DeepCluster
def test_deepcluster_pseudo_labels_split_two_colours_and_the_head_is_reinitialised():
    images = _two_colours(16)
    method = DeepCluster(MeanColour(), pool_size=16, num_clusters=2, recipe=IDENTITY,
                         monitor_labels=torch.arange(16) % 2)
    nn.init.constant_(method.head.weight, 7.0)
    method.on_epoch_start(0, images)
    t = method.targets
    assert bool((t[0::2] == t[0]).all()) and bool((t[1::2] == t[1]).all()) and t[0] != t[1]
    assert method.cluster_sizes.tolist() == [8, 8]
    assert not bool((method.head.weight == 7.0).any())
    _, logs = method.training_step(images[:4], index=torch.arange(4))
    assert logs["cluster_acc"] == 1.0 and logs["nmi"] == pytest.approx(1.0)


def test_deepcluster_balanced_loss_weights_each_cluster_by_its_inverse_size():
    torch.manual_seed(0)
    method = DeepCluster(MeanColour(), pool_size=4, num_clusters=2, recipe=IDENTITY)
    method.targets.copy_(torch.tensor([0, 0, 0, 1]))
    method.cluster_sizes.copy_(torch.tensor([3, 1]))
    images = _two_colours(4)
    loss, _ = method.training_step(images, index=torch.arange(4))
    logits = method.head(method.backbone(views.augment(images, IDENTITY)))
    per_image = F.cross_entropy(logits, method.targets, reduction="none")
    w = torch.tensor([1 / 3, 1 / 3, 1 / 3, 1.0])   # weights 1/3 and 1, normalised away by the mean
    torch.testing.assert_close(loss, (w * per_image).sum() / w.sum())


def test_deepcluster_needs_the_index():
    with pytest.raises(ValueError, match="index"):
        DeepCluster(_cnn(), pool_size=4, num_clusters=2).training_step(_noise(4))


# ----------------------------------------------------------------------------- SeLa
@pytest.mark.parametrize("equipartition, sizes", [(False, [16, 0, 0, 0]), (True, [4, 4, 4, 4])])
def test_sela_naive_labelling_collapses_and_sinkhorn_balances_it(equipartition, sizes):
    # 16 grey levels; the head's logits are 4k·m for class k, plus a large bias for class 0:
    # every image prefers class 0, but the brighter an image, the more it leans to class 3
    images = (torch.arange(16) * 16).to(torch.uint8)[:, None, None, None].expand(16, 3, 32, 32)
    method = SeLa(MeanColour(), pool_size=16, num_clusters=4, equipartition=equipartition,
                  sinkhorn_iters=500)
    with torch.no_grad():
        method.head.weight.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [8.0, 0.0], [12.0, 0.0]]))
        method.head.bias.copy_(torch.tensor([100.0, 0.0, 0.0, 0.0]))
    state = {k: v.clone() for k, v in method.head.state_dict().items()}
    method.on_epoch_start(0, images.contiguous())
    assert sorted(method.cluster_sizes.tolist(), reverse=True) == sizes
    if equipartition:   # balanced *and* ordered by brightness: the 4 darkest in class 0, …
        assert method.targets.tolist() == [k for k in range(4) for _ in range(4)]
    for k, v in method.head.state_dict().items():                # the head is kept
        torch.testing.assert_close(v, state[k])


# ----------------------------------------------------------------------------- SCAN
def test_mine_neighbours_on_points_of_a_line():
    # directions at angles 0°, 10°, 90°, 95°, 180°: nearest by cosine, itself excluded
    angles = torch.deg2rad(torch.tensor([0.0, 10.0, 90.0, 95.0, 180.0]))
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    assert mine_neighbours(x, 1)[:, 0].tolist() == [1, 0, 3, 2, 3]
    assert mine_neighbours(x, 2, chunk=2).tolist() == [[1, 2], [0, 2], [3, 1], [2, 1], [3, 2]]
    with pytest.raises(ValueError, match="k"):
        mine_neighbours(x, 5)


def test_scan_with_a_frozen_backbone_trains_only_the_head_and_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    backbone = _cnn()
    method = SCAN(backbone, torch.arange(16).roll(1)[:, None], num_clusters=4)
    bn = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)][0]
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head_before = method.head.weight.detach().clone()
    fit(method, _noise(16), config=TrainConfig(steps=3, batch_size=8, warmup=0.0),
        progress=False)
    assert not bn.training
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(method.head.weight, head_before)
    # no gradient reached the backbone, and the (possibly shared) module was not altered
    assert all(p.grad is None and p.requires_grad for p in backbone.parameters())


def test_scan_loss_pairs_each_image_with_one_of_its_neighbours():
    # neighbour of image i is i ^ 1 (its pair); with the identity view and a mean-colour backbone
    # an image and its neighbour give the same logits exactly when they have the same colour
    images = _two_colours(8)
    images[1::4] = images[0::4]                                   # pairs (0,1), (4,5) agree
    neighbours = (torch.arange(8) ^ 1)[:, None]
    method = SCAN(MeanColour(), neighbours, num_clusters=2, recipe=IDENTITY)
    method.on_epoch_start(0, images)
    loss, logs = method.training_step(images, index=torch.arange(8))
    x = views.augment(images, IDENTITY)
    a = method.head(method.backbone(x))
    n = method.head(method.backbone(x[neighbours[:, 0]]))
    torch.testing.assert_close(loss, losses.scan_loss(a, n, 5.0))
    assert logs["consistency"] == pytest.approx(losses.scan_consistency(a, n).item())


# ----------------------------------------------------------------------------- OBoW
class Quadrants(nn.Module):
    """Local features: the mean of the first channel over each quarter of the view,
    ``(B, 1, 2, 2)``; the global feature is their mean."""

    feature_dim = 1

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward_features_map(self, x):
        return F.avg_pool2d(x[:, :1], x.shape[-1] // 2) * self.scale

    def forward(self, x):
        return self.forward_features_map(x).mean(dim=(2, 3))


def test_obow_bag_of_words_is_a_distribution_that_peaks_on_the_words_present():
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    images[0, :, :16], images[0, :, 16:] = 0, 60          # image 0: top quarters 0, bottom 60
    images[1, :, :16], images[1, :, 16:] = 150, 250        # image 1: 150 and 250
    method = OBoW(Quadrants(), num_words=4, word_temperature=0.01)
    x = views.to_float(images)
    u = method.local_features(x)                                          # (2, 4, 1)
    with torch.no_grad():
        method.words.copy_(torch.stack([u[0, 0], u[0, 2], u[1, 0], u[1, 2]]))
    bow = method.bag_of_words(x)
    torch.testing.assert_close(bow.sum(1), torch.ones(2))
    # the assignments are all but hard: each image holds half of its mass on each of its words
    torch.testing.assert_close(bow, torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]),
                               atol=1e-3, rtol=0)


def test_obow_teacher_is_an_ema_of_the_student_and_gets_no_gradient():
    torch.manual_seed(0)
    method = OBoW(_cnn(), num_words=4, momentum=0.5, vocabulary_images=8)
    method.on_epoch_start(0, _noise(8))
    method.training_step(_noise(8))[0].backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    t_before = [p.clone() for p in method.teacher.parameters()]
    method.on_step_end(1, None)
    for t0, t1, s in zip(t_before, method.teacher.parameters(), method.backbone.parameters(),
                         strict=True):
        torch.testing.assert_close(t1, 0.5 * t0 + 0.5 * s)
