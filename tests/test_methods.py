"""Pretraining methods: pretext targets, contrastive losses, MoCo's step rules, and the loop.

Hand-crafted stand-in encoders (a feature that reads which half of the image is bright, the
value of each tile, the value of each patch) make the pretext targets checkable exactly: a
method whose targets are misaligned with its inputs gets those stand-ins wrong.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from test_losses import ce_atol  # the float32 bound of a contrastive loss
from torch import nn

from sslkit import data, losses, models, views
from sslkit.methods import (
    BYOL,
    DINO,
    SLA,
    WMSE,
    BarlowTwins,
    Jigsaw,
    MoCo,
    PositionPrediction,
    RotNet,
    SimCLR,
    SimSiam,
    SupCon,
    Supervised,
    VICReg,
    function_key,
)
from sslkit.pretext import jigsaw_permutations
from sslkit.train import TrainConfig, cache_path, fit

EPS = torch.finfo(torch.float32).eps  # 2**-23; a float32 rounding of x errs by ≤ |x|·EPS/2

# A view that changes nothing but the scale: full-image crop, no flip, no colour.
IDENTITY = views.Recipe(size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                        jitter_p=0.0, grayscale_p=0.0)


def _noise(n=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def _decode(x: torch.Tensor) -> torch.Tensor:
    """Normalised view values back to the 0-255 pixel scale."""
    return (x * views.STD[0] + views.MEAN[0]) * 255


def _cnn() -> models.SmallCNN:
    return models.SmallCNN(widths=(8, 16, 32))  # small and fast; pools twice (12 px tiles ok)


def _tiny_vit(**kw) -> models.TinyViT:
    return models.TinyViT(**{**dict(image_size=32, patch_size=8, dim=32, depth=1, heads=2,
                                    pos_embed=False), **kw})


BUILDERS = {
    "rotnet": lambda: RotNet(_cnn()),
    "jigsaw": lambda: Jigsaw(_cnn()),
    "position": lambda: PositionPrediction(_tiny_vit()),
    "simclr": lambda: SimCLR(_cnn()),
    "moco": lambda: MoCo(_cnn(), queue_size=256),
    "moco_shuffle_bn": lambda: MoCo(_cnn(), queue_size=256, bn_splits=2,
                                    momentum_schedule="cosine"),
    "supcon": lambda: SupCon(_cnn()),
    "byol": lambda: BYOL(_cnn()),
    "byol_linear_predictor": lambda: BYOL(_cnn(), predictor="linear"),
    "simsiam": lambda: SimSiam(_cnn()),
    "dino": lambda: DINO(_cnn(), num_prototypes=32, local_size=16),
    "vicreg": lambda: VICReg(_cnn()),
    "barlow_twins": lambda: BarlowTwins(_cnn()),
    "wmse": lambda: WMSE(_cnn(), proj_dim=4),
    "sla": lambda: SLA(_cnn(), 10),
    "sla_invariant": lambda: SLA(_cnn(), 10, joint=False),
}


# ----------------------------------------------------------------------------- every method
@pytest.mark.parametrize("name", BUILDERS)
def test_training_step_gives_a_finite_loss_whose_gradient_reaches_the_first_layer(name):
    torch.manual_seed(0)
    method = BUILDERS[name]().train()
    images, labels = _noise(16), torch.arange(16) % 4
    loss, logs = method.training_step(images, labels)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert logs and all(isinstance(v, float) for v in logs.values())
    loss.backward()
    first = next(method.backbone.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0
    if isinstance(method, MoCo):  # the key encoder is moved by EMA only, never by gradients
        keys = [*method.key_backbone.parameters(), *method.key_projector.parameters()]
        assert all(not p.requires_grad and p.grad is None for p in keys)


@pytest.mark.parametrize("name", BUILDERS)
def test_training_step_under_bf16_autocast_gives_a_finite_float32_loss(name):
    torch.manual_seed(0)
    method = BUILDERS[name]().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logs = method.training_step(_noise(8), torch.arange(8) % 4)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(math.isfinite(v) for v in logs.values())


@pytest.mark.parametrize("name", BUILDERS)
def test_hparams_name_every_constructor_argument(name):
    method = BUILDERS[name]()
    params = list(inspect.signature(type(method)).parameters)[1:]  # all but the backbone
    assert set(params) <= set(method.hparams)
    assert method.hparams["recipe"] == "None"


def test_a_different_hyperparameter_gives_a_different_cache_entry():
    images = _noise(8)
    torch.manual_seed(0)
    a = SimCLR(_cnn(), temperature=0.2)
    torch.manual_seed(0)
    b = SimCLR(_cnn(), temperature=0.5)
    torch.manual_seed(0)
    c = SimCLR(_cnn(), temperature=0.2)
    assert cache_path(a, images) != cache_path(b, images)
    assert cache_path(a, images) == cache_path(c, images)


@pytest.mark.parametrize("make, name", [
    (lambda: SimCLR(_cnn(), temperature=0.0), "temperature"),
    (lambda: SimCLR(_cnn(), proj_dim=0), "proj_dim"),
    (lambda: SimCLR(_cnn(), recipe="strong"), "recipe"),
    (lambda: SupCon(_cnn(), temperature=-0.1), "temperature"),
    (lambda: SupCon(_cnn(), proj_hidden=0), "proj_hidden"),
    (lambda: MoCo(_cnn(), temperature=float("nan")), "temperature"),
    (lambda: MoCo(_cnn(), momentum=1.0), "momentum"),
    (lambda: MoCo(_cnn(), momentum=-0.1), "momentum"),
    (lambda: MoCo(_cnn(), queue_size=0), "queue_size"),
    (lambda: MoCo(_cnn(), momentum_schedule="linear"), "momentum_schedule"),
    (lambda: MoCo(_cnn(), bn_splits=0), "bn_splits"),
    (lambda: MoCo(_cnn(), symmetric="yes"), "symmetric"),
    (lambda: RotNet(_cnn(), head_hidden=-1), "head_hidden"),
    (lambda: RotNet(_cnn(), recipe={"size": 32}), "recipe"),
    (lambda: Jigsaw(_cnn(), grid=1), "grid"),
    (lambda: Jigsaw(_cnn(), num_permutations=25), "num_permutations"),
    (lambda: Jigsaw(_cnn(), jitter=-1), "jitter"),
    (lambda: PositionPrediction(_tiny_vit(), mask_ratio=1.0), "mask_ratio"),
    (lambda: PositionPrediction(_cnn()), "vit"),
    (lambda: PositionPrediction(_tiny_vit(), recipe=views.Recipe(size=16)), "recipe"),
    (lambda: MoCo(_cnn(), symmetric=1), "symmetric"),   # 1 == True, but it is not a bool
    (lambda: Supervised(_cnn(), num_classes=0), "num_classes"),
    (lambda: Supervised(_cnn(), 10, label_smoothing=1.0), "label_smoothing"),
    (lambda: Supervised(_cnn(), 10, recipe="crop"), "recipe"),
    (lambda: SimCLR(_cnn(), loss_fn="nt_xent"), "loss_fn"),
    (lambda: SLA(_cnn(), num_classes=0), "num_classes"),
    (lambda: SLA(_cnn(), 4, joint=1), "joint"),
])
def test_invalid_hyperparameters_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_errors_that_depend_on_the_batch_name_the_parameter():
    with pytest.raises(ValueError, match=r"fit\(method, images, labels="):
        SupCon(_cnn()).training_step(_noise(4))
    # symmetric MoCo enqueues 2 keys per image: 2 x 16 > 16
    with pytest.raises(ValueError, match="queue_size=16"):
        MoCo(_cnn(), queue_size=16).training_step(_noise(16))
    with pytest.raises(ValueError, match="jitter=16"):  # 16x16 tiles cannot lose 16 pixels
        Jigsaw(_cnn(), jitter=16).training_step(_noise(4))


# ----------------------------------------------------------------------------- pretext tasks
class HalfBrightness(nn.Module):
    """Features: mean of the top, left, bottom and right halves (which side is bright)."""

    feature_dim = 4

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        h = x.shape[-1] // 2
        halves = [x[..., :h, :], x[..., :, :h], x[..., h:, :], x[..., :, h:]]
        return self.scale * torch.stack([v.mean(dim=(1, 2, 3)) for v in halves], dim=1)


def test_rotnet_targets_follow_the_rotations_of_upright_images():
    # Upright images: bright top half. Rotating by k·90° counter-clockwise moves the bright
    # side to the top, left, bottom, right: the feature the head reads for class k.
    images = torch.full((8, 3, 32, 32), 30, dtype=torch.uint8)
    images[:, :, :16] = 200
    images += torch.randint(0, 20, images.shape, generator=torch.Generator().manual_seed(0),
                            dtype=torch.uint8)
    flip_ok = views.Recipe(size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.5,
                           jitter_p=0.0, grayscale_p=0.0)  # a horizontal flip keeps "up"
    method = RotNet(HalfBrightness(), recipe=flip_ok)
    with torch.no_grad():
        method.head.weight.copy_(torch.eye(4))
        method.head.bias.zero_()
    loss, logs = method.training_step(images)
    assert logs["pretext_acc"] == 1.0
    assert loss < math.log(4)
    # 4B rotated images, rotation-major targets [0]*B + [1]*B + [2]*B + [3]*B
    seen = []
    method.head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape))
    method.training_step(images)
    assert seen == [(32, 4)]


def _bright_top(n=6, seed=0) -> torch.Tensor:
    """Upright images: bright top half, dark bottom half, a little noise."""
    images = torch.full((n, 3, 32, 32), 30, dtype=torch.uint8)
    images[:, :, :16] = 200
    return images + torch.randint(0, 20, images.shape, dtype=torch.uint8,
                                  generator=torch.Generator().manual_seed(seed))


def _sla_reading(joint_rows: dict[int, int], num_classes=3) -> SLA:
    """SLA on HalfBrightness whose joint logit ``row`` reads the brightness of side ``k``."""
    method = SLA(HalfBrightness(), num_classes, recipe=IDENTITY)
    with torch.no_grad():
        method.classifier.weight.zero_()
        method.classifier.bias.zero_()
        for row, side in joint_rows.items():
            method.classifier.weight[row, side] = 5.0
    return method


@pytest.mark.parametrize("label", [0, 2])
def test_sla_joint_label_is_class_major_and_follows_the_rotation(label):
    # Rotation k moves the bright side to side k (top, left, bottom, right), so the row that
    # reads side k wins for the k-th quarter of the batch. Joint label 4·c + k: the rows
    # 4·label + k must be the targets; a rotation-major order (3·k + c) fails for k > 0.
    method = _sla_reading({4 * label + k: k for k in range(4)})
    images = _bright_top()
    loss, logs = method.training_step(images, torch.full((6,), label))
    assert logs["train_acc"] == 1.0
    assert loss < math.log(12)
    wrong = _sla_reading({3 * k + label: k for k in range(4)})
    assert wrong.training_step(images, torch.full((6,), label))[1]["train_acc"] == 0.25


def test_sla_invariant_baseline_has_one_label_per_class_for_every_rotation():
    method = SLA(HalfBrightness(), 3, joint=False, recipe=IDENTITY)
    assert method.classifier.out_features == 3
    with torch.no_grad():
        method.classifier.weight.zero_()
        method.classifier.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))   # always class 1
    loss, logs = method.training_step(_bright_top(), torch.ones(6, dtype=torch.long))
    assert logs["train_acc"] == 1.0 and loss < 1e-3


def test_sla_aggregated_inference_matches_each_rotation_with_its_own_logit():
    # Class 1 reads side k of the input turned by k, which is the input's top every time;
    # class 2 reads side k + 1, which is the input's left every time. Aggregated over the four
    # rotations, class 1 scores the top's mean and class 2 the left's (noise makes left and
    # right differ, so a wrong pairing of rotation and logit shows).
    method = _sla_reading({**{4 + k: k for k in range(4)},
                           **{8 + k: (k + 1) % 4 for k in range(4)}}).eval()
    x = views.augment(_bright_top(), IDENTITY)                    # (6, 3, 32, 32) upright
    sides = method.backbone(x)                                    # (6, 4): top, left, bottom, right
    scores = method.class_logits(x)                               # (6, 3)
    rounding = 4 * EPS * 5 * sides.abs().max().item()                   # the same sums, other order
    assert torch.allclose(scores[:, 0], torch.zeros(6))
    assert torch.allclose(scores[:, 1], 5 * sides[:, 0], atol=rounding)
    assert torch.allclose(scores[:, 2], 5 * sides[:, 1], atol=rounding)
    assert method.predict(x).eq(1).all()
    # An input already turned a quarter: every rotation lands one side further, class 2 wins.
    assert method.predict(torch.rot90(x, 1, dims=(-2, -1))).eq(2).all()
    # Single inference reads the logits of (class, 0°) of the input as it is.
    single = method.class_logits(x, aggregate=False)
    assert torch.allclose(single, torch.stack([0 * sides[:, 0], 5 * sides[:, 0],
                                               5 * sides[:, 1]], 1))


class TileValue(nn.Module):
    """Feature of a tile: its mean value (tiles are constant)."""

    feature_dim = 1

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x.mean(dim=(1, 2, 3))[:, None]


class ReadPermutation(nn.Module):
    """Head that decodes tile ids from their values and looks the order up among ``perms``."""

    def __init__(self, perms):
        super().__init__()
        self.perms = perms

    def forward(self, feats):  # (B, n)
        tile = (_decode(feats) / 40).round().long() - 1               # (B, n) original tile ids
        return 10.0 * (tile[:, None, :] == self.perms[None]).all(dim=-1).float()  # (B, P)


def test_jigsaw_targets_name_the_permutation_of_the_tiles_the_backbone_sees():
    images = torch.zeros(32, 3, 32, 32, dtype=torch.uint8)
    for j in range(4):  # tile j (row-major, 16x16) has value 40·(j + 1)
        images[:, :, 16 * (j // 2):16 * (j // 2 + 1), 16 * (j % 2):16 * (j % 2 + 1)] = 40 * (j + 1)
    torch.manual_seed(0)
    method = Jigsaw(TileValue(), recipe=IDENTITY, jitter=4)
    method.head = ReadPermutation(method.permutations)
    sizes = []
    method.backbone.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape))
    loss, logs = method.training_step(images)
    assert logs["pretext_acc"] == 1.0
    assert sizes == [(32 * 4, 3, 12, 12)]  # B·n tiles, 16 - jitter pixels a side
    assert method.permutations.shape == (24, 4)
    torch.testing.assert_close(method.permutations, jigsaw_permutations(2))


def test_jigsaw_crops_each_tile_at_its_own_random_offset():
    torch.manual_seed(0)
    method = Jigsaw(_cnn(), jitter=4)
    tile = torch.arange(16 * 16, dtype=torch.float32).reshape(16, 16)  # value = 16·row + col
    tiles = tile.expand(8, 4, 3, 16, 16)
    cropped = method._random_crop_tiles(tiles)                          # (8, 4, 3, 12, 12)
    assert cropped.shape == (8, 4, 3, 12, 12)
    r0, c0 = (cropped[..., 0, 0, 0] // 16).long(), (cropped[..., 0, 0, 0] % 16).long()
    for b in range(8):
        for j in range(4):
            expected = tile[r0[b, j]:r0[b, j] + 12, c0[b, j]:c0[b, j] + 12]
            assert torch.equal(cropped[b, j], expected.expand(3, 12, 12))
    assert r0.min() >= 0 and r0.max() <= 4 and c0.min() >= 0 and c0.max() <= 4
    assert len(r0.unique()) > 1 and len(c0.unique()) > 1 and not torch.equal(r0, c0)


class PatchValue(nn.Module):
    """A 'ViT' whose token n is the one-hot code of the position written in patch n's pixels."""

    image_size, patch_size, num_patches, feature_dim = 32, 8, 16, 16

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward_tokens(self, x, keep_idx=None):
        value = _decode(models.patchify(x, self.patch_size).mean(dim=-1))    # (B, N)
        pos = ((value - 10) / 15).round().long()
        tokens = self.scale * 10.0 * F.one_hot(pos, self.num_patches).float()  # (B, N, N)
        if keep_idx is not None:
            tokens = tokens.gather(1, keep_idx[..., None].expand(-1, -1, self.num_patches))
        return tokens


@pytest.mark.parametrize("mask_ratio, n_keep", [(0.0, 16), (0.5, 8), (0.75, 4)])
def test_position_prediction_targets_are_the_kept_patch_indices(mask_ratio, n_keep):
    images = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    for n in range(16):  # patch n (row-major, 8x8) has value 10 + 15·n
        r, c = divmod(n, 4)
        images[:, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8] = 10 + 15 * n
    torch.manual_seed(0)
    method = PositionPrediction(PatchValue(), mask_ratio=mask_ratio, recipe=IDENTITY)
    with torch.no_grad():
        method.head.weight.copy_(torch.eye(16))
        method.head.bias.zero_()
    seen = []
    method.head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape))
    _, logs = method.training_step(images)
    assert logs["pretext_acc"] == 1.0
    assert seen == [(8, n_keep, 16)]


def test_position_prediction_with_a_random_vit_without_position_embedding_is_at_chance():
    torch.manual_seed(0)
    images = data.render(data.preset("hard"), 64, seed=1).images
    vit = models.TinyViT(patch_size=4, dim=32, depth=1, heads=2, pos_embed=False)  # N = 64
    method = PositionPrediction(vit, mask_ratio=0.0)
    with torch.no_grad():
        _, logs = method.training_step(images)
    assert logs["pretext_acc"] < 3 / 64  # chance is 1/64 over 64·64 tokens


def test_position_prediction_drops_the_class_token_before_the_head():
    torch.manual_seed(0)
    images = _noise(4)
    method = PositionPrediction(_tiny_vit(pool="cls"), mask_ratio=0.0, recipe=IDENTITY)
    seen = []
    method.head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    method.training_step(images)
    # The identity view does not depend on the random draw, and the backbone runs as in the
    # step (train mode, autograd on): the same input bits through the same kernels, so the
    # head must see exactly the patch tokens.
    patches = method.backbone.forward_tokens(views.augment(images, IDENTITY))[:, 1:]  # (4, 16, 32)
    torch.testing.assert_close(seen[0], patches, rtol=0, atol=0)


# ----------------------------------------------------------------------------- SimCLR, SupCon
class RandomFeatures(nn.Module):
    """Features that carry no information about the image."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * torch.randn(x.shape[0], self.feature_dim)


class FixedProjection(nn.Module):
    """A deterministic function of the pixels: a random linear map of the flattened image."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, self.feature_dim)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_simclr_loss_is_log_2b_minus_1_for_uninformative_features_and_low_for_matched_views():
    torch.manual_seed(0)
    b = 64
    chance = math.log(2 * b - 1)
    loss, logs = SimCLR(RandomFeatures(), temperature=0.5).training_step(_noise(b))
    assert loss.item() == pytest.approx(chance, abs=0.1)
    assert logs["top1"] < 0.1
    # identical views (no augmentation) of distinct images: the positive is found at once
    method = SimCLR(FixedProjection(), recipe=IDENTITY, temperature=0.1)
    loss, logs = method.training_step(_noise(b))
    assert loss.item() < 0.1 * chance
    # the two views are bit-identical; a float32 cosine of d-vectors errs by ≤ (d + 2)·EPS and
    # the mean of b of them by ≤ b·EPS/2 more (2e-5 for d = 128); a wrong pairing gives ≈ 0
    d = method.projector[-1].out_features
    assert logs["pos_sim"] == pytest.approx(1.0, abs=(d + 2 + b / 2) * EPS)
    assert logs["top1"] == 1.0
    assert logs["neg_sim"] < 0.5


def test_simclr_loss_fn_is_called_on_the_projections_and_defaults_to_nt_xent():
    calls = []

    def my_loss(z1, z2, temperature):
        calls.append((z1.shape, z2.shape, temperature))
        return losses.nt_xent(z1, z2, temperature)

    torch.manual_seed(0)
    default = SimCLR(_cnn(), temperature=0.3)
    custom = SimCLR(_cnn(), temperature=0.3, loss_fn=my_loss)
    custom.load_state_dict(default.state_dict())
    images = _noise(8)
    torch.manual_seed(1)
    a, logs_a = default.training_step(images)
    torch.manual_seed(1)
    b, logs_b = custom.training_step(images)
    d = default.projector[-1].out_features
    assert calls == [(torch.Size([8, d]), torch.Size([8, d]), 0.3)]
    assert torch.equal(a, b) and logs_a == logs_b  # the same views, projections and formula
    # a different function is a different cache entry; the default keeps "None"
    assert default.hparams["loss_fn"] == "None"
    assert cache_path(default, images) != cache_path(custom, images)
    # the loss it returns is the one trained on
    doubled = SimCLR(_cnn(), temperature=0.3,
                     loss_fn=lambda z1, z2, t: 2 * losses.nt_xent(z1, z2, t))
    doubled.load_state_dict(default.state_dict())
    torch.manual_seed(1)
    c, _ = doubled.training_step(images)
    torch.testing.assert_close(c, 2 * a)


def test_supervised_uses_the_recipe_it_is_given():
    seen = []

    class Spy(nn.Module):
        feature_dim = 4

        def forward(self, x):
            seen.append(x)
            return x.mean(dim=(2, 3)).repeat(1, 2)[:, :4]

    images, labels = _noise(6), torch.arange(6) % 3
    Supervised(Spy(), 3, recipe=IDENTITY).training_step(images, labels)
    torch.testing.assert_close(seen[-1], views.to_float(images))  # identity view: the images
    colour = views.simclr_recipe(24, colour="strong")
    method = Supervised(Spy(), 3, recipe=colour)
    torch.manual_seed(0)
    method.training_step(images, labels)
    assert seen[-1].shape == (6, 3, 24, 24)
    torch.manual_seed(0)
    torch.testing.assert_close(seen[-1], views.augment(images, colour))
    Supervised(Spy(), 3).training_step(images, labels)  # default: crop and flip at 32 px
    assert seen[-1].shape == (6, 3, 32, 32)


def test_supcon_with_distinct_labels_equals_simclr_on_the_same_views():
    torch.manual_seed(0)
    simclr = SimCLR(_cnn(), temperature=0.1)
    supcon = SupCon(_cnn(), temperature=0.1)
    supcon.load_state_dict(simclr.state_dict())
    images = _noise(16)
    torch.manual_seed(1)
    a, _ = simclr.training_step(images)
    torch.manual_seed(1)
    b, _ = supcon.training_step(images, torch.arange(16))
    # the same views and projections (bit-identical); the two losses are different float32
    # formulas, each within ce_atol of the exact value (7e-4 for 128-d embeddings at τ = 0.1)
    d = simclr.projector[-1].out_features
    torch.testing.assert_close(a, b, rtol=0, atol=2 * ce_atol(d, 31, 0.1, anchors=32))
    torch.manual_seed(1)  # shared labels add positives: a different loss
    c, _ = supcon.training_step(images, torch.arange(16) % 2)
    assert abs(c.item() - a.item()) > 0.1


# ----------------------------------------------------------------------------- MoCo
def _perturbed_moco(**kw) -> MoCo:
    torch.manual_seed(0)
    method = MoCo(_cnn(), **{"queue_size": 64, **kw})
    with torch.no_grad():  # as after an optimiser step: the query encoder has moved
        for p in [*method.backbone.parameters(), *method.projector.parameters()]:
            p.add_(0.1 * torch.randn_like(p))
    return method


def _key_and_query_params(method):
    keys = [*method.key_backbone.parameters(), *method.key_projector.parameters()]
    queries = [*method.backbone.parameters(), *method.projector.parameters()]
    return keys, queries


def test_moco_momentum_update_is_the_exponential_moving_average():
    method = _perturbed_moco(momentum=0.9)
    keys, queries = _key_and_query_params(method)
    old = [p.clone() for p in keys]
    assert not all(torch.equal(k, q) for k, q in zip(old, queries, strict=True))
    method.on_step_end(1, 10)
    for k, k0, q in zip(keys, old, queries, strict=True):
        # ≤ 3 roundings per side of values ≤ max(|k0|, |q|) < 3: ≤ 3·EPS·3 < the default 1e-5
        torch.testing.assert_close(k, 0.9 * k0 + 0.1 * q)
    assert all(p.requires_grad for p in queries) and not any(p.requires_grad for p in keys)


def test_moco_with_zero_momentum_copies_the_query_encoder():
    method = _perturbed_moco(momentum=0.0)
    method.on_step_end(1, 10)
    keys, queries = _key_and_query_params(method)  # exact: 0·k + 1·q rounds to q
    assert all(torch.equal(k, q) for k, q in zip(keys, queries, strict=True))


def test_moco_takes_a_queue_update_and_a_momentum_update_as_hooks():
    from sslkit.methods import ema_update_

    calls = []

    def my_queue(queue, keys, ptr):
        calls.append(("queue", tuple(queue.shape), tuple(keys.shape), ptr))
        return losses.update_queue(queue, keys, ptr)

    def my_momentum(key_net, query_net, m):
        calls.append(("momentum", type(key_net).__name__, m))
        ema_update_(key_net, query_net, m)

    default = _perturbed_moco(momentum=0.9)
    custom = _perturbed_moco(momentum=0.9, queue_update_fn=my_queue,
                             momentum_update_fn=my_momentum)
    images = _noise(8)
    for method in (default, custom):
        torch.manual_seed(1)
        method.training_step(images)
        method.on_step_end(1, 10)
    d = default.projector[-1].out_features
    assert calls[0] == ("queue", (64, d), (16, d), 0)   # symmetric: 2 x 8 keys from row 0
    assert [c[0] for c in calls] == ["queue", "momentum", "momentum"]  # backbone, projector
    assert all(c[2] == 0.9 for c in calls[1:])
    # the hooks compute what the library does: the same queue, pointer and key encoder
    assert torch.equal(default.queue, custom.queue) and int(custom.queue_ptr) == 16
    for a, b in zip(default.state_dict().values(), custom.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # a different function is a different cache entry; the default keeps "None"
    assert default.hparams["queue_update_fn"] == "None"
    assert custom.hparams["momentum_update_fn"] == function_key(my_momentum)  # name and code
    assert cache_path(default, images) != cache_path(custom, images)
    with pytest.raises(ValueError, match="queue_update_fn"):
        MoCo(_cnn(), queue_update_fn="fifo")


def test_moco_cosine_momentum_schedule_rises_to_one():
    method = MoCo(_cnn(), momentum=0.9, momentum_schedule="cosine")
    assert method.current_momentum(0, 10) == pytest.approx(0.9)
    assert method.current_momentum(5, 10) == pytest.approx(0.95)
    assert method.current_momentum(10, 10) == pytest.approx(1.0)
    assert method.current_momentum(5, None) == pytest.approx(0.9)  # time budget: constant
    assert MoCo(_cnn(), momentum=0.9).current_momentum(5, 10) == 0.9


@pytest.mark.parametrize("symmetric", [False, True])
def test_moco_queue_is_a_fifo_of_the_keys_and_the_loss_uses_the_queue_before_them(symmetric):
    b, size = 8, 28
    method = _perturbed_moco(queue_size=size, symmetric=symmetric)  # key encoder != query
    method.eval()  # BN on running statistics: each embedding depends on its own image only
    recipe = views.simclr_recipe(32)  # the default views, reproduced below from the seed
    per_step = 2 * b if symmetric else b
    ptr, wrapped = 0, False
    for step in range(4):
        images = _noise(b, seed=step)
        before = method.queue.clone()
        torch.manual_seed(100 + step)
        loss, _ = method.training_step(images)
        torch.manual_seed(100 + step)
        x1, x2 = views.two_views(images, recipe)
        # each query's positive is the key of the *other* view, made by the key encoder; the
        # batches are the method's ([x1; x2] against [x2; x1]), so the embeddings are bit-identical
        x_q, x_k = (torch.cat([x1, x2]), torch.cat([x2, x1])) if symmetric else (x1, x2)
        with torch.no_grad():
            q = method.projector(method.backbone(x_q))
            k = F.normalize(method.key_projector(method.key_backbone(x_k)), dim=1)
        torch.testing.assert_close(loss, losses.moco_loss(q, k, before, method.temperature))
        rows = (ptr + torch.arange(per_step)) % size
        wrapped |= bool((rows[1:] < rows[:-1]).any())
        torch.testing.assert_close(method.queue[rows], k)
        untouched = torch.ones(size, dtype=torch.bool)
        untouched[rows] = False
        assert torch.equal(method.queue[untouched], before[untouched])
        ptr = (ptr + per_step) % size
        assert int(method.queue_ptr) == ptr
    assert wrapped  # the ring buffer went past its end at least once


def test_moco_queue_and_pointer_are_saved_and_restored():
    torch.manual_seed(0)
    method = MoCo(_cnn(), queue_size=64)
    method.training_step(_noise(8))
    state = method.state_dict()
    assert "queue" in state and "queue_ptr" in state and int(state["queue_ptr"]) == 16
    assert any(name.startswith("key_backbone.") for name in state)
    other = MoCo(_cnn(), queue_size=64)
    other.load_state_dict(state)
    assert torch.equal(other.queue, method.queue) and int(other.queue_ptr) == 16


def test_moco_shuffle_bn_emulation_restores_the_order_of_the_keys():
    # In eval mode BN statistics are fixed, so splitting and shuffling must change nothing.
    torch.manual_seed(0)
    plain = MoCo(_cnn(), queue_size=64, recipe=IDENTITY).eval()
    split = MoCo(_cnn(), queue_size=64, recipe=IDENTITY, bn_splits=4).eval()
    split.load_state_dict(plain.state_dict())
    images = _noise(16)
    a, _ = plain.training_step(images)
    b, _ = split.training_step(images)
    # Every layer is per sample here, so only the batch shapes differ (4 chunks of 4 vs 16).
    # A worst-case float32 bound through these random networks is vacuous (|W|···|x| exceeds
    # the embeddings 4·10^4-fold), so this relies on per-sample results not depending on the
    # batch size (bit-identical with AVX-512, AVX2 and default kernels, 1 and 2 threads); the
    # default tolerance (1e-5 + 1.3e-6 relative) leaves room for a few ulp.
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(plain.queue, split.queue)


# ----------------------------------------------------------------------------- the loop
@pytest.fixture(scope="module")
def shapes():
    batch = data.render(data.preset("hard"), 64, seed=0)
    return batch.images, batch.labels


@pytest.mark.parametrize("name", BUILDERS)
def test_five_steps_of_fit_run_for_every_method(name, shapes):
    images, labels = shapes
    torch.manual_seed(0)
    method = BUILDERS[name]()
    history = fit(method, images, labels if name in ("supcon", "sla", "sla_invariant") else None,
                  TrainConfig(steps=5, batch_size=32), progress=False)
    assert history.step == [1, 2, 3, 4, 5]
    assert all(math.isfinite(v) for v in history.loss)
    assert history.logs and all(len(v) == 5 for v in history.logs.values())
    if isinstance(method, MoCo):
        assert int(method.queue_ptr) == 5 * 2 * 32 % 256


def test_a_given_function_is_keyed_by_its_code_not_only_its_name():
    """A learner who fixes their loss and re-runs the cell must not load the cached run of the
    broken one: the same name with other code is another cache entry; the same code the same."""
    def make(scale):
        namespace = {"losses": losses}
        exec(f"def my_loss(z1, z2, t):\n    return {scale} * losses.nt_xent(z1, z2, t)",
             namespace)
        return namespace["my_loss"]

    first, again, fixed = make(2), make(2), make(1)
    assert first.__qualname__ == fixed.__qualname__
    keys = [function_key(f) for f in (first, again, fixed)]
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith(f"{first.__module__}.my_loss@") and function_key(None) == "None"
    images = _noise(4)
    assert (cache_path(SimCLR(_cnn(), loss_fn=first), images)
            != cache_path(SimCLR(_cnn(), loss_fn=fixed), images))
    assert MoCo(_cnn(), queue_update_fn=fixed).hparams["queue_update_fn"] == keys[2]
