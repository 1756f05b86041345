"""Tests of sslkit.models: shapes, memory format, gradient flow, ViT token geometry, heads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslkit import models
from sslkit.models import (
    MLP,
    ResNet18Cifar,
    SmallCNN,
    TinyViT,
    backbone,
    count_parameters,
    patchify,
    predictor,
    projector,
    unpatchify,
)

EPS = torch.finfo(torch.float32).eps  # 2**-23
# Functional identities of networks (memory layout, patch order, masks) are checked in float64:
# a float32 bound is vacuous (|W_L|···|W_1|·|x| exceeds the outputs ~10^4-fold, cancellation),
# a float64 one is not. First order, an output errs by ≤ n·EPS64/2 · (|W_L|···|W_1|·|x|) with
# n ≈ 1100 roundings on its path (fan-ins 27 + 144 + 288 + 576, the pooling, BN): ≤ 6e-10 ×
# max|y| for the eval SmallCNN (its absolute network exceeds max|y| 5·10^3-fold). TOL64 allows
# 170× that for BN in train mode and LayerNorm/softmax (which rescale by a std). A layout, order
# or mask bug moves features by ≥ 1e-2.
TOL64 = 1e-7
EXPECTED_DIM = {
    "small_cnn": 128,
    "small_cnn_wide": 256,
    "resnet18": 512,
    "vit_tiny": 128,
    "vit_tiny_nopos": 128,
}


def tiny_vit(**kw) -> TinyViT:
    torch.manual_seed(0)
    defaults = dict(image_size=16, patch_size=4, dim=32, depth=2, heads=2)
    return TinyViT(**{**defaults, **kw}).eval()


# ----------------------------------------------------------------------------------------------
# Backbones: shapes, feature_dim, gradients
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_backbones():
    torch.manual_seed(0)
    return {name: backbone(name).eval() for name in EXPECTED_DIM}


@pytest.mark.parametrize("name", list(EXPECTED_DIM))
@pytest.mark.parametrize("size", [24, 32, 64])
def test_backbone_output_shape(built_backbones, name, size):
    model = built_backbones[name]
    assert model.feature_dim == EXPECTED_DIM[name]
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, EXPECTED_DIM[name])
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_feature_maps_before_pooling():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    cnn = SmallCNN().eval()
    fmap = cnn.forward_features_map(x)
    assert fmap.shape == (2, 128, 4, 4)  # three 2x2 pools: 32 -> 4
    torch.testing.assert_close(cnn(x), fmap.mean(dim=(2, 3)))  # the same kernels: bit-identical
    res = ResNet18Cifar(width=16).eval()
    assert res.feature_dim == 128
    assert res.forward_features_map(x).shape == (2, 128, 4, 4)  # CIFAR stem keeps 32 at stage 1


def test_resnet18_cifar_stem_and_size():
    model = ResNet18Cifar()
    first = model.stem[0]
    assert (first.kernel_size, first.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    # torchvision's resnet18 has 11,689,512 parameters: minus the 7x7 stem (9,408 -> 1,728 for
    # 3x3) and the 1000-way fc (513,000) leaves 11,168,832.
    assert count_parameters(model) == 11_689_512 - 9_408 + 1_728 - 513_000


@pytest.mark.parametrize("name", list(EXPECTED_DIM))
def test_gradients_reach_first_layer(name):
    torch.manual_seed(0)
    model = backbone(name, **({"width": 16} if name == "resnet18" else {})).train()
    out = model(torch.randn(4, 3, 32, 32))
    (out * torch.randn_like(out)).sum().backward()
    first = next(p for p in model.parameters() if p.ndim >= 2)  # first conv / patch embedding
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("train_mode", [False, True])
def test_small_cnn_channels_last_matches_nchw(train_mode):
    torch.manual_seed(0)
    fast = SmallCNN()
    assert fast.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = SmallCNN(channels_last=False)
    assert not plain.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain.load_state_dict(fast.state_dict())
    fast.train(train_mode).double()  # float64: see TOL64
    plain.train(train_mode).double()
    assert fast.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)  # NCHW: the model converts it itself
    fmap = fast.forward_features_map(x)
    assert fmap.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), plain(x), rtol=TOL64, atol=TOL64)


def test_resnet_channels_last_matches_nchw():
    torch.manual_seed(0)
    fast = ResNet18Cifar(width=8).eval()
    plain = ResNet18Cifar(width=8, channels_last=False).eval()
    plain.load_state_dict(fast.state_dict())
    fast.double()  # float64: see TOL64
    plain.double()
    x = torch.randn(4, 3, 24, 24, dtype=torch.float64)
    torch.testing.assert_close(fast(x), plain(x), rtol=TOL64, atol=TOL64)


# ----------------------------------------------------------------------------------------------
# ViT: patches and tokens
# ----------------------------------------------------------------------------------------------
def test_patchify_layout_and_inverse():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)  # 2 x 3 grid of 4x4x3 patches
    # patch 1 = grid row 0, column 1, flattened as (row, col, channel)
    torch.testing.assert_close(p[:, 1], x[:, :, 0:4, 4:8].permute(0, 2, 3, 1).reshape(2, 48))
    # patch 3 = grid row 1, column 0
    torch.testing.assert_close(p[:, 3], x[:, :, 4:8, 0:4].permute(0, 2, 3, 1).reshape(2, 48))
    torch.testing.assert_close(unpatchify(p, 4, grid_size=(2, 3)), x, rtol=0, atol=0)
    sq = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(unpatchify(patchify(sq, 4), 4), sq, rtol=0, atol=0)
    q = torch.randn(3, 16, 48)
    torch.testing.assert_close(patchify(unpatchify(q, 4), 4), q, rtol=0, atol=0)


def test_patchify_errors():
    with pytest.raises(ValueError, match="patch_size=5"):
        patchify(torch.zeros(1, 3, 16, 16), 5)
    with pytest.raises(ValueError, match="grid_size"):
        unpatchify(torch.zeros(1, 6, 48), 4)  # 6 patches is not a square grid
    with pytest.raises(ValueError, match="patch_size=0"):
        patchify(torch.zeros(1, 3, 16, 16), 0)


def _permute_patches(x: torch.Tensor, perm: torch.Tensor, patch: int) -> torch.Tensor:
    return unpatchify(patchify(x, patch)[:, perm], patch)


def test_vit_without_pos_embed_is_permutation_equivariant():
    model = tiny_vit(pos_embed=False).double()  # float64: see TOL64
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    perm = torch.randperm(16)
    with torch.no_grad():
        tokens = model.forward_tokens(x)
        tokens_perm = model.forward_tokens(_permute_patches(x, perm, 4))
        torch.testing.assert_close(tokens_perm, tokens[:, perm], rtol=TOL64, atol=TOL64)
        torch.testing.assert_close(model(_permute_patches(x, perm, 4)), model(x),
                                   rtol=TOL64, atol=TOL64)


def test_vit_with_pos_embed_is_not_permutation_equivariant():
    model = tiny_vit(pos_embed=True)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 16)
    perm = torch.randperm(16)
    with torch.no_grad():
        diff = (model.forward_tokens(_permute_patches(x, perm, 4))
                - model.forward_tokens(x)[:, perm]).abs().max()
    assert diff > 1e-2


def test_vit_cls_pool():
    model = tiny_vit(pool="cls")
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        tokens = model.forward_tokens(x)
        assert tokens.shape == (3, 17, 32)
        torch.testing.assert_close(model(x), tokens[:, 0])  # the same kernels: bit-identical


def test_vit_mean_pool_is_mean_of_tokens():
    model = tiny_vit()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        tokens = model.forward_tokens(x)
        assert tokens.shape == (3, 16, 32)
        torch.testing.assert_close(model(x), tokens.mean(1))  # the same kernels: bit-identical


def test_vit_keep_idx_all_in_order_and_permuted():
    model = tiny_vit().double()  # float64: see TOL64
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        full = model.forward_tokens(x)
        keep_all = torch.arange(16).expand(2, 16)
        torch.testing.assert_close(model.forward_tokens(x, keep_idx=keep_all), full,
                                   rtol=TOL64, atol=TOL64)
        # Position embedding is added before selection, so a reordered keep_idx only reorders.
        perm = torch.stack([torch.randperm(16), torch.randperm(16)])
        out = model.forward_tokens(x, keep_idx=perm)
        torch.testing.assert_close(out, full.gather(1, perm[..., None].expand(-1, -1, 32)),
                                   rtol=TOL64, atol=TOL64)


def test_vit_keep_idx_subset_matches_image_made_of_those_patches():
    """Without position embedding, encoding a subset of patches equals encoding a small image
    assembled from exactly those patches (an independent route to the same tokens)."""
    model = tiny_vit(pos_embed=False, pool="cls").double()  # float64: see TOL64
    torch.manual_seed(2)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    keep = torch.stack([torch.randperm(16)[:4], torch.randperm(16)[:4]])  # different per sample
    with torch.no_grad():
        sub = model.forward_tokens(x, keep_idx=keep)
        assert sub.shape == (2, 5, 32)
        for i in range(2):
            small = unpatchify(patchify(x[i : i + 1], 4)[:, keep[i]], 4)  # (1, 3, 8, 8)
            torch.testing.assert_close(sub[i : i + 1], model.forward_tokens(small),
                                       rtol=TOL64, atol=TOL64)


def test_vit_mask_equals_keep_idx():
    model = tiny_vit()
    x = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, [0, 3, 5, 9]] = True
    mask[1, [1, 2, 14, 15]] = True
    keep = torch.stack([(~m).nonzero().squeeze(1) for m in mask])
    with torch.no_grad():  # the mask becomes this keep_idx: the same kernels, bit-identical
        torch.testing.assert_close(model.forward_tokens(x, mask=mask),
                                   model.forward_tokens(x, keep_idx=keep))
    ragged = mask.clone()
    ragged[0, 7] = True
    with pytest.raises(ValueError, match="same number"):
        model.forward_tokens(x, mask=ragged)


def test_vit_other_input_sizes_use_resized_pos_embed():
    model = tiny_vit()
    with torch.no_grad():
        assert model.forward_tokens(torch.randn(1, 3, 24, 24)).shape == (1, 36, 32)
        assert model(torch.randn(1, 3, 8, 8)).shape == (1, 32)
    with pytest.raises(ValueError, match="patch_size"):
        model(torch.randn(1, 3, 18, 18))


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------
def test_mlp_shapes_and_structure():
    mlp = MLP(16, 32, 8, num_layers=3)
    assert mlp(torch.randn(5, 16)).shape == (5, 8)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 32), (32, 32), (32, 8)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in mlp) == 2
    assert isinstance(mlp[-1], nn.Linear)

    last_bn = MLP(16, 32, 8, last_batch_norm=True)
    assert isinstance(last_bn[-1], nn.BatchNorm1d) and not last_bn[-1].affine
    seen = []
    last_bn[-1].register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
    out = last_bn.train()(torch.randn(64, 16))
    # 0 but for rounding: the batch mean of the BN's input h (64 terms) errs by ≤ 64·EPS/2·max|h|,
    # i.e. by ≤ 32·EPS·max|h| / std(h) in the output; averaging 64 outputs |y| ≤ √63 (each
    # rounded once) adds ≤ 32·EPS·(√63 + 1). About 5e-5; without the BN, |mean| ~ 0.2.
    h = seen[0]
    spread = (h.abs().amax(0) / (h.var(0, correction=0) + last_bn[-1].eps).sqrt()).max().item()
    bound = 32 * EPS * (spread + 63**0.5 + 1)
    torch.testing.assert_close(out.mean(0), torch.zeros(8), rtol=0, atol=bound)

    no_bn = MLP(16, 32, 8, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in no_bn)
    single = MLP(16, 32, 8, num_layers=1)
    assert len(single) == 1 and single(torch.randn(2, 16)).shape == (2, 8)


def test_count_parameters_hand_computed():
    # Linear 4->8 without bias (BN follows): 32; BN(8): 16; Linear 8->3 with bias: 27.
    mlp = MLP(4, 8, 3)
    assert count_parameters(mlp) == 32 + 16 + 27
    mlp[0].requires_grad_(False)
    assert count_parameters(mlp, trainable_only=True) == 16 + 27


def test_projector_and_predictor():
    proj = projector(128)
    assert proj(torch.randn(4, 128)).shape == (4, 128)
    assert projector(64, 256, 32, num_layers=3)(torch.randn(4, 64)).shape == (4, 32)
    pred = predictor(128, 64)
    assert pred(torch.randn(4, 128)).shape == (4, 128)
    assert isinstance(pred[1], nn.BatchNorm1d)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------
def test_backbone_unknown_name_lists_names():
    with pytest.raises(ValueError) as err:
        backbone("resnet50")
    msg = str(err.value)
    assert "name='resnet50'" in msg
    for name in EXPECTED_DIM:
        assert name in msg


def test_backbone_kwargs_override_preset():
    assert backbone("small_cnn", widths=(8, 16)).feature_dim == 16
    assert backbone("resnet18", width=16).feature_dim == 128
    vit = backbone("vit_tiny_nopos", dim=64, heads=2)
    assert vit.feature_dim == 64 and vit.pos_embed is None
    assert set(models.BACKBONES) == set(EXPECTED_DIM)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: SmallCNN(widths=()), "widths"),
        (lambda: SmallCNN(widths=(16, 0)), "widths=0"),
        (lambda: SmallCNN(in_channels=0), "in_channels=0"),
        (lambda: ResNet18Cifar(width=0), "width=0"),
        (lambda: TinyViT(image_size=30, patch_size=4), "patch_size=4"),
        (lambda: TinyViT(dim=30, heads=4), "heads=4"),
        (lambda: TinyViT(pool="max"), "pool='max'"),
        (lambda: TinyViT(mlp_ratio=0.0), "mlp_ratio=0.0"),
        (lambda: TinyViT(depth=0), "depth=0"),
        (lambda: MLP(8, 16, 4, num_layers=0), "num_layers=0"),
        (lambda: MLP(0, 16, 4), "in_dim=0"),
        (lambda: projector(128, out_dim=-1), "out_dim=-1"),
    ],
)
def test_invalid_arguments_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_cls_attention_is_the_class_tokens_softmax_row_in_the_last_block():
    torch.manual_seed(0)
    vit = models.TinyViT(image_size=16, patch_size=4, dim=16, depth=2, heads=2, pool="cls").eval()
    x = torch.randn(3, 3, 16, 16)
    maps = vit.cls_attention(x)                                    # (3, heads, 4, 4)
    assert maps.shape == (3, 2, 4, 4)
    # Independently: the last block's input, its pre-norm, q and k from the packed projection.
    tokens = torch.cat([vit.cls_token.expand(3, -1, -1),
                        vit.patch_embed(models.patchify(x, 4)) + vit.pos_embed], dim=1)
    tokens = vit.blocks[0](tokens)
    last = vit.blocks[1]
    h = last.norm1(tokens)
    q, k, _ = F.linear(h, last.self_attn.in_proj_weight, last.self_attn.in_proj_bias).chunk(3, -1)
    q, k = (t.view(3, 17, 2, 8).transpose(1, 2) for t in (q, k))  # (B, heads, 17, 8)
    attn = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1)
    torch.testing.assert_close(maps, attn[:, :, 0, 1:].reshape(3, 2, 4, 4), rtol=1e-4, atol=1e-6)
    assert bool((maps.sum((-1, -2)) <= 1 + 1e-6).all())            # the class token's own share
    with pytest.raises(ValueError, match="pool='cls'"):
        models.TinyViT(image_size=16, patch_size=4, dim=16, depth=1, heads=2).cls_attention(x)
